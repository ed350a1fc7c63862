"""A session's note as plain text and as Markdown, for the clinic's records system.

The note body comes from ``appliance.notes.note_to_text`` /
``note_to_markdown`` when that module provides them, so the web page and any
other export agree; the header (date, client, signature) and the addenda
are added here. File names never contain the client label.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from appliance.storage import Session
from web_ui.formatting import clock, duration, when
from web_ui.records import NoteRecord
from web_ui.transcript import TranscriptView

_notes_markdown: Callable[[Mapping], str] | None
_notes_text: Callable[[Mapping], str] | None
try:  # the note builder's own renderers, if present
    from appliance.notes import note_to_markdown as _notes_markdown
    from appliance.notes import note_to_text as _notes_text
except ImportError:  # pragma: no cover - depends on the other module being present
    _notes_markdown = _notes_text = None


def filename(session: Session, fmt: str) -> str:
    """holdnote-session-42-2024-05-03.md (no client text)."""
    return f"holdnote-session-{session.id}-{when(session.started_at, '%Y-%m-%d')}.{fmt}"


def _status(record: NoteRecord) -> str:
    if record.signed:
        return f"Signed by {record.signed_by} on {when(record.signed_at)}"
    return "DRAFT - not signed"


def _facts(session: Session, label: str | None, record: NoteRecord) -> list[tuple[str, str]]:
    facts = [
        ("Session", f"{when(session.started_at)} ({duration(session.duration_s)})"),
        ("Client", label or "(no label)"),
        ("Consent to record documented", "yes" if session.consent else "no"),
    ]
    if _notes_text is None:  # the note builder's banner says this otherwise
        facts.append(("Status", _status(record)))
    return facts


def _display_note(record: NoteRecord) -> dict:
    """The note as the renderers should show it: the signature from the database, in local time."""
    note = dict(record.note)
    if record.signed:
        note.update(status="signed", signed_by=record.signed_by,
                    signed_at=when(record.signed_at))
    else:
        note["status"] = "draft"
    return note


def _section_text(section: dict) -> str:
    text = str(section.get("text") or "").strip()
    return "" if text == str(section.get("prompt") or "").strip() else text


def _body_text(note: dict) -> str:
    if _notes_text is not None:
        return _notes_text(note).strip()
    parts = [str(note.get("header") or "").strip()]
    for section in note.get("sections") or []:
        title = str(section.get("title") or section.get("key") or "").upper()
        parts.append(f"{title}\n{_section_text(section) or '(empty)'}")
    return "\n\n".join(p for p in parts if p)


def _body_markdown(note: dict) -> str:
    if _notes_markdown is not None:
        return _notes_markdown(note).strip()
    parts = [f"# {md_escape(str(note.get('header') or 'Session note'))}"]
    for section in note.get("sections") or []:
        title = md_escape(str(section.get("title") or section.get("key") or ""))
        parts.append(f"## {title}\n\n{md_escape(_section_text(section)) or '_(empty)_'}")
    return "\n\n".join(parts)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def md_escape(text: str) -> str:
    """Escape Markdown and HTML specials, so client words stay words in any viewer."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def as_text(session: Session, label: str | None, record: NoteRecord,
            transcript: TranscriptView | None = None) -> str:
    """The note as plain text: who and when, the note, addenda, optionally the transcript."""
    out = [f"{name}: {value}" for name, value in _facts(session, label, record)]
    out += ["", _body_text(_display_note(record))]
    if record.addenda:
        out += ["", "ADDENDA"]
        for addendum in record.addenda:
            out += ["", f"{when(addendum.created_at)} - {addendum.author}", addendum.text]
    if transcript is not None:
        out += ["", "TRANSCRIPT", "", *_transcript_lines(transcript, "{time} {speaker}: {text}")]
    return "\n".join(out).rstrip() + "\n"


def as_markdown(session: Session, label: str | None, record: NoteRecord,
                transcript: TranscriptView | None = None) -> str:
    """The note as Markdown (client text escaped): title, facts, the note, addenda, transcript."""
    body = _body_markdown(_display_note(record))
    title, _, rest = body.partition("\n")
    if not title.startswith("# "):
        title, rest = f"# Session note, {when(session.started_at, '%Y-%m-%d')}", body
    out = [title, ""]
    out += [f"- **{name}:** {md_escape(value)}" for name, value in _facts(session, label, record)]
    out += ["", rest.strip()]
    if record.addenda:
        out += ["", "## Addenda"]
        for addendum in record.addenda:
            out += ["", f"**{when(addendum.created_at)}, {md_escape(addendum.author)}**", "",
                    md_escape(addendum.text)]
    if transcript is not None:
        out += ["", "## Transcript", ""]
        out += _transcript_lines(transcript, "- `{time}` **{speaker}:** {text}", md_escape)
    return "\n".join(out).rstrip() + "\n"


def _transcript_lines(view: TranscriptView, pattern: str, escape=lambda text: text) -> list[str]:
    lines = []
    for line in view.lines:
        if line.kind == "segment":
            speaker, text = line.speaker, line.text
        elif line.kind == "silence":
            speaker, text = "(silence)", duration(line.end - line.start)
        else:
            speaker, text = "(bookmark)", line.text or "marked moment"
        lines.append(pattern.format(time=clock(line.start), speaker=escape(speaker),
                                    text=escape(text)))
    return lines
