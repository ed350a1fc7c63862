"""Signed notes and a client's record as PDF, written with fpdf2 in a Unicode font.

The content is what the text and Markdown exports say, in the same order (the
web layer builds a :class:`PdfNote` from the same facts, note body and addenda;
:func:`note_sections` uses :func:`appliance.notes.render.section_text`, so a
template prompt never reaches a record). The layout (:mod:`pdf_layout`, loaded
only when a PDF is made): the practice name heads every page, each note ends
with its signature block and a line to sign on, a draft carries "DRAFT — not
signed" across every page, and the transcript follows the note only when one
is given.

The font is DejaVu Sans from Debian's fonts-dejavu-core: every client name,
accent or non-Latin letter prints as typed. Without it, :class:`PdfFontError`
says which package to install; nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import HoldnoteError
from appliance.notes.render import NOT_COMPLETED, section_text

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class PdfFontError(HoldnoteError, FileNotFoundError):
    """The Unicode font the PDF export writes with is not installed."""


@dataclass(frozen=True)
class PdfAddendum:
    """A dated addition to a signed note, as printed under it."""

    written: str
    author: str
    text: str


@dataclass(frozen=True)
class PdfNote:
    """One note as the PDF prints it; ``signature`` None marks a draft."""

    title: str
    facts: tuple[tuple[str, str], ...]
    sections: tuple[tuple[str, str], ...]
    addenda: tuple[PdfAddendum, ...] = ()
    signature: str | None = None
    transcript: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PdfCover:
    """The cover block of a client's record."""

    clinician: str
    client: str
    first: str
    last: str
    count: int


def note_sections(note: Mapping) -> tuple[tuple[str, str], ...]:
    """(title, text) of each section in order, "Not completed." where only a prompt is left."""
    return tuple((str(s.get("title") or s.get("key") or "Untitled section"),
                  section_text(s) or NOT_COMPLETED)
                 for s in note.get("sections") or () if isinstance(s, Mapping))


def note_pdf(note: PdfNote, practice: str = "", fonts: Path = FONT_DIR) -> bytes:
    """One note as a PDF: practice, note, addenda, signature block, transcript if given."""
    from appliance.notes import pdf_layout  # fpdf2 and its fonts: only when a PDF is made

    doc = pdf_layout.Document(practice, fonts)
    pdf_layout.write_note(doc, note)
    return bytes(doc.output())


def record_pdf(cover: PdfCover, notes: Sequence[PdfNote], practice: str = "",
               fonts: Path = FONT_DIR) -> bytes:
    """A client's record: a cover block, then each note (in the order given) on its own pages."""
    from appliance.notes import pdf_layout

    doc = pdf_layout.Document(practice, fonts)
    doc.add_page()
    doc.heading("Client record", 16)
    doc.pairs(cover_facts(cover, practice))
    for note in notes:
        pdf_layout.write_note(doc, note)
    return bytes(doc.output())


def cover_facts(cover: PdfCover, practice: str = "") -> tuple[tuple[str, str], ...]:
    """The cover block's lines (also the text and Markdown record's head); no practice line
    while the practice name is unset."""
    span = cover.first if cover.first == cover.last else f"{cover.first} to {cover.last}"
    rows = (("Practice", practice), ("Clinician", cover.clinician), ("Client", cover.client),
            ("Sessions", span), ("Signed notes", str(cover.count)))
    return tuple((name, value) for name, value in rows if value)
