"""A supervision excerpt as PDF, on the note PDF's pages and font (:mod:`pdf_layout`).

The same content as :func:`appliance.notes.supervision.markdown`, in the same
order; no practice name heads the pages (an excerpt names nobody), and the
document's metadata holds no title or author.
"""

from __future__ import annotations

from pathlib import Path

from appliance.notes.pdf import FONT_DIR
from appliance.notes.supervision import TITLE, Excerpt, Line, clock, facts


def excerpt_pdf(excerpt: Excerpt, fonts: Path = FONT_DIR) -> bytes:
    """The excerpt as a PDF; :class:`appliance.notes.pdf.PdfFontError` without the font."""
    from appliance.notes import pdf_layout  # fpdf2 and its fonts: only when a PDF is made

    doc = pdf_layout.Document("", fonts)
    doc.add_page()
    doc.heading(TITLE, 16)
    doc.pairs(facts(excerpt))
    for moment in excerpt.moments:
        doc.heading(f"Moment {moment.number}, at {clock(moment.start)}", 12)
        for line in moment.lines:
            doc.paragraph(_line(line), 9.5, "B" if line.picked else "")
        doc.paragraph("Comment:", 10, "B")
        doc.paragraph(moment.comment or "(none)")
    return bytes(doc.output())


def _line(line: Line) -> str:
    mark = "▸ " if line.picked else ""
    return f"{mark}{clock(line.start)} {line.speaker}: {' '.join(line.text.split())}"
