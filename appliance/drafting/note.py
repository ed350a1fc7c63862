"""The drafted note: the template's sections with the model's checked statements in them.

:func:`start` lays out the note in a template from the machine-made note of the
transcript (its header and facts), every drafted section holding its prompt
until the drafter fills it. :func:`put_section` puts a section's verified
statements into its text, each followed by the times it cites, or "Not
discussed." when none passed; the clinician's own part stays as a prompt. A
section the clinician has already written in keeps their text (the statements
are kept beside it). The risk screen's flags go into the template's risk
section verbatim, with their times, whatever the model wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

from appliance.drafting.settings import RISK_SECTION, PracticeSettings, SectionSpec
from appliance.notes import draft, render, times
from appliance.transcript import RiskFlag

NOT_DISCUSSED = "Not discussed."
RISK_SOURCE = "risk screen"


def _facts(machine_note: Mapping) -> str:
    for section in machine_note.get("sections", []):
        if section.get("auto"):
            return str(section.get("text", ""))
    return ""


def _header(machine_note: Mapping, template: str) -> str:
    header = str(machine_note.get("header", ""))
    old = str(machine_note.get("template", ""))
    if old and header.startswith(f"{old} session note"):
        return f"{template} session note" + header[len(f"{old} session note"):]
    return header


def _prompt(spec: SectionSpec) -> str:
    if spec.clinician:
        return spec.clinician
    return f"[{spec.instruction}]" if spec.instruction else ""


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def start(machine_note: Mapping, settings: PracticeSettings, template: str | None,
          model_label: str) -> dict:
    """A note in ``template`` (default: the practice's) waiting for its drafted statements."""
    name = template or settings.template
    specs = settings.sections(name)
    facts = _facts(machine_note)
    sections = []
    for spec in specs:
        prompt = _prompt(spec)
        text = _join(facts if spec.facts else "", prompt)
        sections.append({"key": spec.key, "title": spec.title, "text": text, "auto": spec.facts,
                         "prompt": prompt, "clinician": spec.clinician or None,
                         "drafted": spec.drafted, "statements": [], "machine_text": text})
    note = {key: copy.deepcopy(value) for key, value in machine_note.items() if key != "sections"}
    note.update({"template": name.upper() if name.upper() in ("SOAP", "DAP", "BIRP") else name,
                 "status": "draft", "header": _header(machine_note, name), "sections": sections,
                 "drafting": {"state": "drafting", "model": model_label, "reason": None,
                              "dropped": 0, "finished_at": None}})
    return note


def typed_sections(stored: Mapping, machine_note: Mapping) -> dict[str, str]:
    """The sections of ``stored`` a person wrote in, by key: what a new layout must keep.

    A drafted section was typed in when its text is no longer what the drafter put
    there; a section of the facts-and-prompts note when it holds more than its
    prompt (the facts section: when it differs from the facts as made).
    """
    made = {s.get("key"): s.get("text") for s in machine_note.get("sections", [])}
    typed = {}
    for section in stored.get("sections", []):
        key, text = section.get("key"), section.get("text", "")
        if "machine_text" in section:
            changed = text != section["machine_text"]
        elif section.get("auto"):
            changed = text != made.get(key)
        else:
            changed = render.is_filled(section)
        if changed and isinstance(key, str) and isinstance(text, str):
            typed[key] = text
    return typed


def keep_typed(note: dict, typed: Mapping[str, str], titles: Mapping[str, str] | None = None) -> dict:
    """Put the clinician's texts back into a new layout.

    Those whose section the new template lacks go under ``kept_text`` by their old
    section's title (``titles``), which the page shows beside the note until it is signed.
    """
    keys = {s["key"] for s in note["sections"]}
    for section in note["sections"]:
        if section["key"] in typed:
            section["text"] = typed[section["key"]]  # differs from machine_text: never written over
    aside = {(titles or {}).get(key, key): text for key, text in typed.items() if key not in keys}
    if aside:
        note["kept_text"] = aside
    return note


def statement_line(statement: Mapping) -> str:
    """A statement as the note's text holds it: its words, then the times it cites."""
    cites = ", ".join(times.clock(c) for c in statement.get("citations", []))
    return f"{statement['text']} ({cites})" if cites else str(statement["text"])


def put_section(note: dict, key: str, statements: Sequence[Mapping], dropped: int) -> bool:
    """Put one section's statements into ``note``; True when its text was (re)written.

    The text changes only while the clinician has not typed in the section.
    """
    section = next(s for s in note["sections"] if s["key"] == key)
    section["statements"] = [dict(s) for s in statements]
    note["drafting"]["dropped"] = int(note["drafting"].get("dropped", 0)) + dropped
    if section.get("text") != section.get("machine_text"):
        return False
    verified = [statement_line(s) for s in statements if s.get("verified")]
    body = "\n".join(verified) or NOT_DISCUSSED
    text = _join(body, facts_of(note) if section.get("auto") else "", section.get("clinician") or "")
    section["text"] = section["machine_text"] = text
    return True


def facts_of(note: Mapping) -> str:
    """The facts text the note was laid out with."""
    for section in note.get("sections", []):
        if section.get("auto"):
            text = str(section.get("machine_text") or "")
            prompt = str(section.get("clinician") or "")
            return text.removesuffix(prompt).strip() if prompt else text
    return ""


def risk_statements(flags: Iterable[RiskFlag]) -> list[dict]:
    """The risk screen's flags as statements: verbatim, cited, never the model's words."""
    return [{"text": f"Risk language (automatic screen, verbatim): {draft.flag_line(flag)}",
             "citations": [flag.start], "verified": True, "problem": None, "source": RISK_SOURCE}
            for flag in flags]


def risk_key(note: Mapping) -> str | None:
    """The section the risk flags go into: the template's, else the first drafted one."""
    wanted = RISK_SECTION.get(str(note.get("template", "")).upper())
    keys = [s["key"] for s in note.get("sections", [])]
    if wanted in keys:
        return wanted
    drafted = [s["key"] for s in note.get("sections", []) if s.get("drafted")]
    return drafted[0] if drafted else None


def finish(note: dict, moment: str) -> dict:
    """Mark the draft done."""
    note["drafting"].update(state="done", finished_at=moment)
    return note


def fail(note: dict, reason: str) -> dict:
    """Mark the draft failed with one reason; the sections keep what was drafted."""
    note.setdefault("drafting", {}).update(state="failed", reason=reason)
    return note
