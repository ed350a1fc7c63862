"""A note as plain text and as Markdown, for export and printing, and whether it is complete.

A section is *filled* when something other than its template prompt is left
in it: :func:`section_text` removes the prompt (also with its spacing or
brackets changed) and trims. Exports print that text, or "Not completed" for
a section without any, so a prompt never reaches a record; signing refuses a
note with :func:`unfilled_sections`. The machine-written facts section
(``auto``) is filled while it holds its facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from appliance.notes.draft import DRAFT_BANNER

NOT_COMPLETED = "Not completed."


def _banner(note: Mapping) -> str:
    if note.get("status") == "signed":
        who, when = note.get("signed_by", ""), note.get("signed_at", "")
        parts = ("Signed", f"by {who}" if who else "", f"on {when}" if when else "")
        return " ".join(part for part in parts if part)
    return DRAFT_BANNER


def _prompt_pattern(prompt: str) -> re.Pattern[str] | None:
    """The prompt's words in order, with any spacing between them and its brackets optional."""
    words = prompt.strip().strip("[]").split()
    if not words:
        return None
    return re.compile(r"\[?\s*" + r"\s+".join(map(re.escape, words)) + r"\s*\]?", re.IGNORECASE)


def section_text(section: Mapping) -> str:
    """What a section says without its template prompt, trimmed ("" when only the prompt was left)."""
    text = section.get("text")
    text = text if isinstance(text, str) else ""
    prompt = section.get("prompt")
    pattern = _prompt_pattern(prompt) if isinstance(prompt, str) else None
    if pattern is not None:
        text = pattern.sub("", text)
    return text.strip()


def is_filled(section: Mapping) -> bool:
    """True when the section holds text of its own (the facts section while it holds its facts)."""
    return bool(section_text(section))


def _title(section: Mapping) -> str:
    return str(section.get("title") or section.get("key") or "Untitled section")


def unfilled_sections(note: Mapping) -> list[str]:
    """The titles of the note's sections that are empty or hold only their prompt, in order."""
    sections: Sequence = note.get("sections") or []
    return [_title(s) for s in sections if isinstance(s, Mapping) and not is_filled(s)]


def _section_body(section: Mapping) -> str:
    return section_text(section) or NOT_COMPLETED


def note_to_text(note: Mapping) -> str:
    """Plain-text export: banner, header, then each section under its title."""
    banner = _banner(note)
    lines = [banner.upper() if note.get("status") != "signed" else banner, note.get("header", ""), ""]
    for section in note.get("sections", []):
        title = _title(section)
        lines += [title, "-" * len(title), _section_body(section), ""]
    return "\n".join(lines).rstrip() + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def md_escape(text: str) -> str:
    """Escape Markdown and HTML specials so client and transcript words stay words in any viewer."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _md_body(text: str) -> str:
    """Lines become paragraphs, "- " lines list items; blank lines keep them apart."""
    blocks: list[str] = []
    for line in text.splitlines():
        item = line.lstrip().startswith("- ")
        rendered = "- " + md_escape(line.lstrip()[2:]) if item else md_escape(line.strip())
        if item and blocks and blocks[-1].startswith("- "):
            blocks[-1] += "\n" + rendered
        else:
            blocks.append(rendered)
    return "\n\n".join(blocks)


def note_to_markdown(note: Mapping) -> str:
    """Markdown export; transcript text is escaped so it cannot inject markup."""
    title = md_escape(note.get("header", "Session note"))
    lines = [f"# {title}", "", f"> **{md_escape(_banner(note))}**", ""]
    for section in note.get("sections", []):
        body = _md_body(section_text(section)) or f"*{NOT_COMPLETED}*"
        lines += [f"## {md_escape(_title(section))}", "", body, ""]
    return "\n".join(lines).rstrip() + "\n"
