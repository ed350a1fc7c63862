"""A note as plain text and as Markdown, for export and printing."""

from __future__ import annotations

import re
from collections.abc import Mapping

from appliance.notes.draft import DRAFT_BANNER


def _banner(note: Mapping) -> str:
    if note.get("status") == "signed":
        who, when = note.get("signed_by", ""), note.get("signed_at", "")
        parts = ("Signed", f"by {who}" if who else "", f"on {when}" if when else "")
        return " ".join(part for part in parts if part)
    return DRAFT_BANNER


def _section_body(section: Mapping) -> str:
    text = section.get("text", "").strip()
    prompt = section.get("prompt", "")
    if section.get("auto") and prompt and prompt not in text:
        text = f"{text}\n{prompt}" if text else prompt
    return text or prompt


def note_to_text(note: Mapping) -> str:
    """Plain-text export: banner, header, then each section under its title."""
    banner = _banner(note)
    lines = [banner.upper() if note.get("status") != "signed" else banner, note.get("header", ""), ""]
    for section in note.get("sections", []):
        lines += [section["title"], "-" * len(section["title"]), _section_body(section), ""]
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
        lines += [f"## {md_escape(section['title'])}", "", _md_body(_section_body(section)), ""]
    return "\n".join(lines).rstrip() + "\n"
