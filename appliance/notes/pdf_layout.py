"""The page layout of the PDF export, with fpdf2 (imported only when a PDF is made).

fpdf2 with its fonts and Pillow adds about 40 MB to a process: the web workers
load this module on the first export, not at start (see :mod:`appliance.notes.pdf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from appliance.notes.draft import DRAFT_BANNER
from appliance.notes.pdf import PdfFontError, PdfNote

FONTS = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FAMILY = "DejaVu"
SIGN_HERE = "Signature: "


class Document(FPDF):
    """A4 pages headed by the practice name, numbered, watermarked while a draft prints."""

    def __init__(self, practice: str, fonts: Path):
        super().__init__(format="A4")
        self.practice = practice
        self.draft = False
        for style, name in FONTS.items():
            path = fonts / name
            if not path.is_file():
                raise PdfFontError(
                    f"The PDF font {path} is missing, so no PDF was made. Install Debian's "
                    "fonts-dejavu-core (sudo apt-get install fonts-dejavu-core) and export "
                    "again; the text and Markdown exports work without it.")
            self.add_font(FAMILY, style, str(path))
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(20, 18, 20)
        self.set_creator("Holdnote")

    def header(self) -> None:
        if self.draft:
            self._watermark()
        if self.practice:
            self.set_font(FAMILY, "B", 9)
            self.set_text_color(90)
            self.cell(0, 5, self.practice, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_text_color(0)
            self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(120)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)

    def _watermark(self) -> None:
        x, y = self.w / 2, self.h / 2
        self.set_font(FAMILY, "B", 44)
        self.set_text_color(215)
        with self.rotation(45, x, y):
            self.text(x - self.get_string_width(DRAFT_BANNER) / 2, y, DRAFT_BANNER)
        self.set_text_color(0)

    def heading(self, text: str, size: float) -> None:
        self.set_font(FAMILY, "B", size)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def paragraph(self, text: str, size: float = 10.5, style: str = "") -> None:
        self.set_font(FAMILY, style, size)
        self.multi_cell(0, size * 0.48, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def pairs(self, rows: Sequence[tuple[str, str]]) -> None:
        for name, value in rows:
            self.set_font(FAMILY, "B", 10)
            label = f"{name}: "
            self.cell(self.get_string_width(label), 5, label)
            self.set_font(FAMILY, "", 10)
            self.multi_cell(0, 5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(3)

    def rule(self) -> None:
        self.set_draw_color(170)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(3)


def write_note(doc: Document, note: PdfNote) -> None:
    doc.draft = note.signature is None
    doc.add_page()
    doc.heading(note.title or "Session note", 14)
    doc.pairs(note.facts)
    for title, text in note.sections:
        doc.heading(title, 11.5)
        doc.paragraph(text)
    if note.addenda:
        doc.heading("Addenda", 11.5)
        for addendum in note.addenda:
            doc.paragraph(f"{addendum.written}, {addendum.author}", 9.5, "B")
            doc.paragraph(addendum.text)
    _signature_block(doc, note.signature)
    if note.transcript is not None:
        doc.add_page()
        doc.heading("Transcript", 12)
        for line in note.transcript:
            doc.paragraph(line, 9)


def _signature_block(doc: Document, signature: str | None) -> None:
    doc.ln(4)
    doc.rule()
    doc.paragraph(signature or DRAFT_BANNER, 10.5, "B")
    doc.ln(6)
    doc.set_font(FAMILY, "", 10)
    width = doc.get_string_width(SIGN_HERE)
    doc.cell(width, 5, SIGN_HERE)
    y = doc.get_y() + 4.5
    doc.line(doc.get_x(), y, doc.get_x() + 90, y)
    doc.ln(10)
