"""Corrections of a transcript by the clinician: pure functions, result in, result out.

Edit a line's words or speaker, split a line (its edited text holds line
breaks), merge a line with the next, rename a speaker across the session,
swap two speakers. After each change everything that follows from the lines
is worked out again (:func:`appliance.notes.derive.derive`): silences,
metrics, bookmarks' lines and risk flags. A risk flag that a correction takes
away is not dropped: it stays, marked removed (``RiskFlag.review``), until the
clinician confirms the removal with :func:`confirm_removal`; until then the
note cannot be signed (:func:`unconfirmed_removals`).

Each change comes back as a :class:`Correction`, whose ``summary`` says what
changed in line numbers and speaker positions only, never client words, so it
can be stored and shown in plain text.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from appliance.errors import HoldnoteError
from appliance.notes.derive import derive
from appliance.notes.draft import facts_text
from appliance.transcript import REMOVED, RiskFlag, Segment, TranscriptResult

MAX_LINE_CHARS = 5000
MAX_SPEAKER_CHARS = 60


class CorrectionError(HoldnoteError, ValueError):
    """A correction that cannot be made as asked; the message says what to do instead."""


@dataclass(frozen=True)
class Rules:
    """The configuration a correction needs to work out the facts again."""

    silence_threshold_s: float = 10.0
    risk_flags: bool = True


@dataclass(frozen=True)
class Correction:
    """A corrected result, the kind of change (``edit``, ``split``, ``merge``, ``rename``,
    ``swap``, ``flag``) and a summary without client text ("line 12 text")."""

    result: TranscriptResult
    action: str
    summary: str


# --- lines ----------------------------------------------------------------------------------


def edit_line(result: TranscriptResult, index: int, text: str, speaker: str | None = None,
              rules: Rules = Rules()) -> Correction:
    """Line ``index`` with new words and/or speaker; several lines if ``text`` has line breaks.

    A split divides the line's time among its parts in proportion to their characters.
    """
    old = _line(result, index)
    parts = [" ".join(part.split()) for part in text.splitlines()]
    parts = [part for part in parts if part]
    if not parts:
        raise CorrectionError(
            f"Line {index + 1} cannot be empty. To remove its words, merge it with the next "
            "line (or the line before with it) and edit the result.")
    if len(text) > MAX_LINE_CHARS:
        raise CorrectionError(f"Line {index + 1} is {len(text)} characters long; a line holds at "
                              f"most {MAX_LINE_CHARS}. Split it with line breaks into shorter ones.")
    name = old.speaker if speaker is None else speaker_name(speaker)
    lines = _split(replace(old, speaker=name), parts)
    if len(lines) > 1:
        action, summary = "split", f"line {index + 1} split into {len(lines)}"
    else:
        changed = [what for what, differs in (("text", lines[0].text != old.text),
                                              ("speaker", name != old.speaker)) if differs]
        if not changed:
            raise CorrectionError(f"Line {index + 1} is unchanged: there is nothing to save.")
        action, summary = "edit", f"line {index + 1} " + " and ".join(changed)
    segments = (*result.segments[:index], *lines, *result.segments[index + 1:])
    return Correction(recompute(result, segments, rules), action, summary)


def merge_with_next(result: TranscriptResult, index: int, rules: Rules = Rules()) -> Correction:
    """Line ``index`` and the one after it as one line, spoken by the first line's speaker."""
    first = _line(result, index)
    if index + 1 >= len(result.segments):
        raise CorrectionError(f"Line {index + 1} is the last line: there is no next line to "
                              "merge it with.")
    second = result.segments[index + 1]
    merged = Segment(min(first.start, second.start), max(first.end, second.end), first.speaker,
                     f"{first.text.strip()} {second.text.strip()}".strip())
    segments = (*result.segments[:index], merged, *result.segments[index + 2:])
    return Correction(recompute(result, segments, rules), "merge",
                      f"lines {index + 1} and {index + 2} merged")


def _line(result: TranscriptResult, index: int) -> Segment:
    if not 0 <= index < len(result.segments):
        raise CorrectionError(f"There is no line {index + 1}: this transcript has "
                              f"{len(result.segments)} lines. Reload the transcript.")
    return result.segments[index]


def _split(line: Segment, parts: list[str]) -> list[Segment]:
    """``line`` as one segment per part, its time shared out by characters."""
    total = sum(len(part) for part in parts)
    span, cursor, lines = line.end - line.start, line.start, []
    for number, part in enumerate(parts):
        end = line.end if number == len(parts) - 1 else round(cursor + span * len(part) / total, 2)
        lines.append(Segment(cursor, end, line.speaker, part))
        cursor = end
    return lines


# --- speakers -------------------------------------------------------------------------------


def speaker_name(name: str) -> str:
    """A speaker's name as typed, tidied; :class:`CorrectionError` if it cannot be one."""
    tidy = " ".join(name.split())
    if not tidy:
        raise CorrectionError("A speaker's name cannot be empty. Type a name, such as "
                              "the clinician's name or the client's label.")
    if len(tidy) > MAX_SPEAKER_CHARS:
        raise CorrectionError(f"A speaker's name holds at most {MAX_SPEAKER_CHARS} characters; "
                              f"this one has {len(tidy)}.")
    return tidy


def rename_speaker(result: TranscriptResult, old: str, new: str, *, merge: bool = False,
                   rules: Rules = Rules()) -> Correction:
    """Every line of speaker ``old`` said by ``new``.

    Renaming onto a name already in the session makes both voices one speaker:
    refused unless ``merge`` asks for exactly that.
    """
    number = _speaker_number(result, old)
    name = speaker_name(new)
    if name == old:
        raise CorrectionError("The new name is the same as the old one: nothing to change.")
    if name in result.speakers and not merge:
        raise CorrectionError(
            f"{name!r} already speaks in this session: renaming onto it would make both voices "
            "one speaker. Choose another name, or tick \u201cmerge them\u201d if they are "
            "the same person.")
    segments = tuple(replace(s, speaker=name) if s.speaker == old else s for s in result.segments)
    summary = (f"speaker {number} merged into speaker {_speaker_number(result, name)}"
               if name in result.speakers else f"speaker {number} renamed")
    return Correction(recompute(result, segments, rules), "rename", summary)


def swap_speakers(result: TranscriptResult, first: str, second: str,
                  rules: Rules = Rules()) -> Correction:
    """Every line of ``first`` said by ``second`` and the other way round."""
    one, two = _speaker_number(result, first), _speaker_number(result, second)
    if first == second:
        raise CorrectionError("Choose two different speakers to swap.")
    names = {first: second, second: first}
    segments = tuple(replace(s, speaker=names.get(s.speaker, s.speaker)) for s in result.segments)
    return Correction(recompute(result, segments, rules), "swap",
                      f"speakers {one} and {two} swapped")


def _speaker_number(result: TranscriptResult, name: str) -> int:
    """The speaker's position in order of first speaking, from 1 (a name is client text)."""
    try:
        return result.speakers.index(name) + 1
    except ValueError:
        raise CorrectionError("That speaker is not in this transcript (any more). Reload the "
                              "transcript and choose again.") from None


# --- what follows from the lines ------------------------------------------------------------


def recompute(result: TranscriptResult, segments: tuple[Segment, ...],
              rules: Rules = Rules()) -> TranscriptResult:
    """``result`` with new lines and the facts that follow from them worked out again."""
    found = derive(segments, result.duration_s,
                   bookmarks=[mark.offset for mark in result.bookmarks],
                   gaps=[(gap.start, gap.end) for gap in result.gaps],
                   silence_threshold_s=rules.silence_threshold_s, risk_flags=rules.risk_flags)
    flags = result.flags if found.flags is None else _reviewed(result.flags, found.flags)
    corrected = replace(result, segments=segments, silences=found.stored_silences,
                        metrics=found.metrics, flags=flags, bookmarks=found.bookmarks)
    standing = None if found.flags is None else [f for f in flags if not f.removed]
    facts = facts_text(result.duration_s, found.metrics, list(found.silences), standing,
                       [mark.to_json() for mark in found.bookmarks], rules.silence_threshold_s)
    return replace(corrected, note=_with_facts(result.note, facts, corrected.speakers))


def _with_facts(note: Mapping[str, Any], facts: str, speakers: tuple[str, ...]) -> dict:
    """The transcript's draft note with its facts section and speakers written again.

    A Redraft starts from this note (appliance.transcription.drafts), so after a
    swap it must not restate the old talk shares or speaker names.
    """
    fresh = copy.deepcopy(dict(note))
    for section in fresh.get("sections", []):
        if isinstance(section, dict) and section.get("auto"):
            section["text"] = facts
    header = fresh.get("header")
    if isinstance(header, str):
        parts = [f"Speakers: {', '.join(speakers)}" if part.startswith("Speakers: ") else part
                 for part in header.split(" · ")]
        fresh["header"] = " · ".join(parts)
    return fresh


def _reviewed(before: tuple[RiskFlag, ...], after: tuple[RiskFlag, ...]) -> tuple[RiskFlag, ...]:
    """The new flags plus, marked removed, each earlier flag none of them stands for.

    A new flag stands for an old one when it is of the same category over an
    overlapping time: a renamed speaker or a corrected word nearby keeps the
    flag; words corrected so that the risk language is gone remove it.
    """
    gone = [replace(flag, review=REMOVED) for flag in before
            if not any(_same(flag, new) for new in after)]
    return tuple(sorted((*after, *gone), key=lambda flag: (flag.start, flag.removed)))


def _same(old: RiskFlag, new: RiskFlag) -> bool:
    return old.category == new.category and old.start <= new.end and new.start <= old.end


def unconfirmed_removals(result: TranscriptResult) -> tuple[int, ...]:
    """Indexes (in ``result.flags``) of flags a correction removed, awaiting confirmation."""
    return tuple(i for i, flag in enumerate(result.flags) if flag.removed)


def confirm_removal(result: TranscriptResult, index: int) -> Correction:
    """The clinician agrees flag ``index`` no longer applies: it leaves the list."""
    if not 0 <= index < len(result.flags) or not result.flags[index].removed:
        raise CorrectionError("That flag is not awaiting confirmation (any more). Reload the page.")
    flags = (*result.flags[:index], *result.flags[index + 1:])
    return Correction(replace(result, flags=flags), "flag",
                      f"removal of risk flag {index + 1} confirmed")
