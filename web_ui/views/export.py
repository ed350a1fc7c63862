"""A session's note as plain text and as Markdown, for the clinic's records system.

The note body comes from ``appliance.notes.render.note_to_text`` /
``note_to_markdown`` (and the Markdown escape from the same module), so the
web page and any other export agree; the facts (date, client, consent) and
the addenda are added here. File names never contain the client label.
A template prompt is never printed as note text: a section the clinician
has not written yet reads "Not completed." (see ``render.section_text``).
:func:`as_pdf_note` gives the PDF (``appliance.notes.pdf``) the same facts,
note and addenda in the same order.
"""

from __future__ import annotations

from collections.abc import Callable

from appliance.notes.pdf import PdfAddendum, PdfNote, note_sections
from appliance.notes.render import md_escape, note_to_markdown, note_to_text
from appliance.store.db import Session
from web_ui.views.formatting import clock, duration, when
from web_ui.views.records import Addendum, NoteRecord
from web_ui.views.transcript import TranscriptView

UNREADABLE_ADDENDUM = "(This addendum cannot be read: the stored value is damaged.)"


def filename(session: Session, fmt: str) -> str:
    """holdnote-session-42-2024-05-03.md (no client text)."""
    return f"holdnote-session-{session.id}-{when(session.started_at, '%Y-%m-%d')}.{fmt}"


def _facts(session: Session, label: str | None, record: NoteRecord) -> list[tuple[str, str]]:
    # The signature status is not a fact here: the note's own banner says it.
    return [
        ("Session", f"{when(session.started_at)} ({duration(session.duration_s)})"),
        ("Client", label or "(no label)"),
        ("Consent to record documented", "yes" if session.consent else "no"),
    ]


def _text(addendum: Addendum) -> str:
    return addendum.text if isinstance(addendum.text, str) else UNREADABLE_ADDENDUM


def _display_note(record: NoteRecord) -> dict:
    """The note as the renderers should show it: the signature from the database, in local time."""
    note = dict(record.note)
    if record.signed:
        note.update(status="signed", signed_by=record.signed_by,
                    signed_at=when(record.signed_at))
    else:
        note["status"] = "draft"
    return note


def as_text(session: Session, label: str | None, record: NoteRecord,
            transcript: TranscriptView | None = None) -> str:
    """The note as plain text: who and when, the note, addenda, optionally the transcript."""
    out = [f"{name}: {value}" for name, value in _facts(session, label, record)]
    out += ["", note_to_text(_display_note(record)).strip()]
    if record.addenda:
        out += ["", "ADDENDA"]
        for addendum in record.addenda:
            out += ["", f"{when(addendum.created_at)} - {addendum.author}", _text(addendum)]
    if transcript is not None:
        out += ["", "TRANSCRIPT", "", *_transcript_lines(transcript, "{time} {speaker}: {text}")]
    return "\n".join(out).rstrip() + "\n"


def as_markdown(session: Session, label: str | None, record: NoteRecord,
                transcript: TranscriptView | None = None) -> str:
    """The note as Markdown (client text escaped): title, facts, the note, addenda, transcript."""
    # The note's own "# header" line comes first, then the facts, then the rest of it.
    title, _, rest = note_to_markdown(_display_note(record)).strip().partition("\n")
    out = [title, ""]
    out += [f"- **{name}:** {md_escape(value)}" for name, value in _facts(session, label, record)]
    out += ["", rest.strip()]
    if record.addenda:
        out += ["", "## Addenda"]
        for addendum in record.addenda:
            out += ["", f"**{when(addendum.created_at)}, {md_escape(addendum.author)}**", "",
                    md_escape(_text(addendum))]
    if transcript is not None:
        out += ["", "## Transcript", ""]
        out += _transcript_lines(transcript, "- `{time}` **{speaker}:** {text}", md_escape)
    return "\n".join(out).rstrip() + "\n"


def as_pdf_note(session: Session, label: str | None, record: NoteRecord,
                transcript: TranscriptView | None = None,
                name: Callable[[str], str] = str) -> PdfNote:
    """The note as the PDF prints it: the facts, note and addenda of :func:`as_text`, in its
    order, with the signature naming the clinician by ``name`` (their profile's full name
    and credentials) and the transcript only when given."""
    note = _display_note(record)
    signature = (f"Signed by {name(record.signed_by or '')} on {when(record.signed_at)}"
                 if record.signed else None)
    lines = (tuple(_transcript_lines(transcript, "{time}  {speaker}: {text}"))
             if transcript is not None else None)
    return PdfNote(
        title=str(note.get("header") or "Session note"),
        facts=tuple(_facts(session, label, record)),
        sections=note_sections(note),
        addenda=tuple(PdfAddendum(when(a.created_at), name(a.author), _text(a))
                      for a in record.addenda),
        signature=signature, transcript=lines)


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
