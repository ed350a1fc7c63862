"""The draft note in the practice's template: machine-written facts, clinician prompts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from appliance.notes import times
from appliance.transcript import Metrics, RiskFlag, Silence

TEMPLATES = ("SOAP", "DAP", "BIRP")
DRAFT_BANNER = "DRAFT — not signed"


# --- draft notes ---------------------------------------------------------------------

# Where the machine-written facts go. They are what the recording shows (times,
# talk share, silences, the words flagged), not the clinician's reading of them:
# SOAP's Objective, DAP's Data and BIRP's Behavior are the sections for that.
# Every other section is the clinician's to write and starts as a bracketed prompt.
_ASSESS = "[Your clinical impression, progress toward goals and risk assessment.]"
_PLAN = "[Next steps, homework, referrals, safety plan if needed, next session.]"
_SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "SOAP": [
        ("subjective", "Subjective",
         "[Client's reported concerns, mood and experience since the last session, in their words.]"),
        ("objective", "Objective", "[Add your observations: appearance, affect, behaviour, mental status.]"),
        ("assessment", "Assessment", _ASSESS),
        ("plan", "Plan", _PLAN),
    ],
    "DAP": [
        ("data", "Data", "[Add what the client reported and what you observed.]"),
        ("assessment", "Assessment", _ASSESS),
        ("plan", "Plan", _PLAN),
    ],
    "BIRP": [
        ("behavior", "Behavior", "[Add the client's presentation, mood and what they reported.]"),
        ("intervention", "Intervention", "[The interventions and techniques you used.]"),
        ("response", "Response", "[How the client responded to the interventions.]"),
        ("plan", "Plan", _PLAN),
    ],
}
_AUTO_SECTION = {"SOAP": "objective", "DAP": "data", "BIRP": "behavior"}


def prompt_for(template: str, key: str) -> str:
    """The bracketed prompt of a built-in template's section ("" for an unknown one)."""
    for section_key, _title, prompt in _SECTIONS.get(template.upper(), []):
        if section_key == key:
            return prompt
    return ""


def _clock(seconds: float) -> str:
    """m:ss or h:mm:ss, cut to the second as the transcript page shows it."""
    return times.clock(seconds)


def _when(session_date: dt.date | dt.datetime | str) -> str:
    if isinstance(session_date, dt.datetime):
        return session_date.strftime("%Y-%m-%d %H:%M")
    if isinstance(session_date, dt.date):
        return session_date.isoformat()
    return str(session_date)


def _talk_lines(metrics: Metrics) -> list[str]:
    shares = ", ".join(f"{name} {_clock(metrics.talk_time_s[name])} ({share:.0%})"
                       for name, share in metrics.talk_share.items())
    rates = ", ".join(f"{name} {wpm:.0f}"
                      for name, wpm in metrics.words_per_minute.items() if name != "overall")
    return [
        f"Talk time: {shares or 'no speech detected'}.",
        f"Speaker turns: {metrics.turns}. Words: {metrics.word_count}"
        + (f" (words per minute: {rates})." if rates else "."),
    ]


def _silence_lines(metrics: Metrics, silences: Sequence[Silence], threshold_s: float | None) -> list[str]:
    over = f" over {threshold_s:g} s" if threshold_s is not None else ""
    spans = [times.span_seconds(s.start, s.end) for s in silences]
    # The longest is read off the listed stretches when there are any, so the
    # summary and the list below it never disagree by a rounding second.
    longest = times.length(max(spans)) if spans else times.length(metrics.longest_silence_s)
    lines = [(f"Silences{over}: {len(silences)}, {times.length(sum(spans))} "
              f"in all; longest silence {longest}.")]
    lines += [f"  - {_clock(s.start)}–{_clock(s.end)} ({times.span(s.start, s.end)})"
              for s in silences]
    return lines


def _flag_lines(flags: Sequence[RiskFlag] | None) -> list[str]:
    if flags is None:
        return ["Risk-language screen: turned off."]
    if not flags:
        return ["Risk-language flags: none found (an automatic word screen, not a risk assessment)."]
    lines = [f"Risk-language flags ({len(flags)}; automatic, check each against the transcript):"]
    lines += [f"  - {flag_line(flag)}" for flag in flags]
    return lines


def flag_line(flag: RiskFlag) -> str:
    """One risk flag as the note prints it: time, speaker, kind and the words, verbatim."""
    kind = f"{flag.category}, denial" if flag.negated else flag.category
    line = f"{_clock(flag.start)} {flag.speaker} ({kind}): “{flag.quote}”"
    if flag.context:
        line += f" — in answer to “{flag.context}”"
    return line


def _bookmark_lines(bookmarks: Sequence[Any]) -> list[str]:
    if not bookmarks:
        return []
    lines = [f"Bookmarks ({len(bookmarks)}):"]
    for mark in bookmarks:
        if isinstance(mark, Mapping):
            snippet = f" — {mark.get('speaker')}: “{mark['snippet']}”" if mark.get("snippet") else ""
            lines.append(f"  - {_clock(float(mark['offset']))}{snippet}")
        else:
            lines.append(f"  - {_clock(float(mark))}")
    return lines


def facts_text(duration_s, metrics, silences, flags, bookmarks, threshold_s) -> str:
    """The machine-written facts: duration, talk, silences, risk flags, bookmarks."""
    lines = [f"Recorded duration: {_clock(duration_s)}."]
    lines += _talk_lines(metrics)
    lines += _silence_lines(metrics, silences, threshold_s)
    lines += _flag_lines(flags)
    lines += _bookmark_lines(bookmarks)
    return "\n".join(lines)


def _layout(template: str, sections: Sequence[tuple[str, str, str]] | None
            ) -> tuple[str, list[tuple[str, str, str]], str]:
    """(name, sections, the facts section's key) of a built-in or a custom template."""
    if sections is not None:
        return str(template), [*sections, ("facts", "Session facts", "")], "facts"
    name = template.upper() if isinstance(template, str) else template
    if name not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    return name, _SECTIONS[name], _AUTO_SECTION[name]


def build_draft_note(
    template: str,
    *,
    session_date: dt.date | dt.datetime | str,
    duration_s: float,
    metrics: Metrics,
    silences: Sequence[Silence],
    flags: Sequence[RiskFlag] | None,
    bookmarks: Sequence[Any],
    speakers: Sequence[str],
    clinician: str | None = None,
    silence_threshold_s: float | None = None,
    sections: Sequence[tuple[str, str, str]] | None = None,
) -> dict:
    """A draft note in the practice's template (SOAP, DAP or BIRP).

    The objective facts (date, duration, talk share, silences, risk-language
    flags with times and quotes, bookmarks) fill the template's factual section:
    SOAP Objective, DAP Data, BIRP Behavior (``"auto": True``). The clinical
    sections hold a bracketed prompt (also under ``"prompt"``) for the
    clinician. ``flags=None`` means the screen was turned off. ``bookmarks`` are
    :func:`align_bookmarks` dicts or plain offsets. The note stays
    ``"status": "draft"`` until the clinician signs it. A practice's own template
    passes its ``sections`` as ``(key, title, prompt)``; the facts then go in a last
    "Session facts" section.
    """
    name, layout, auto_key = _layout(template, sections)
    facts = facts_text(duration_s, metrics, silences, flags, bookmarks, silence_threshold_s)
    note_sections = []
    for key, title, prompt in layout:
        auto = key == auto_key
        note_sections.append({
            "key": key, "title": title, "text": facts if auto else prompt, "auto": auto, "prompt": prompt,
        })
    header = " · ".join(part for part in (
        f"{name} session note",
        _when(session_date),
        _clock(duration_s),
        f"Clinician: {clinician}" if clinician else "",
        f"Speakers: {', '.join(speakers)}" if speakers else "",
    ) if part)
    return {
        "template": name, "status": "draft", "header": header, "banner": DRAFT_BANNER,
        "sections": note_sections,
    }


