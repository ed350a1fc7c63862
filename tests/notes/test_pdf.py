"""The PDF export, read back with pypdf: what a clinician files must say what the note says.

Practice, client, every section in order, the addenda, the signature line with the
clinician's full name and credentials; the transcript only when asked for; names with
accents and non-Latin letters intact; a draft marked on every page; no placeholder
where the practice name is unset; a missing font refused with what to install.
"""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from appliance.notes import pdf

CLIENT = "Zoë Ångström-Łukasik · Παπαδοπούλου · Ильина"
SIGNATURE = "Signed by Ana Pérez, PhD, Licensed Psychologist on 2024-05-06 09:30"
SECTIONS = (("Subjective", "Sleeping badly since the move."), ("Objective", "Session length 50 min."),
            ("Assessment", "Low mood, no risk indicators."), ("Plan", "- worry log\n- review in a week"))
TRANSCRIPT = ("0:05  Client: I keep thinking about the zebracorn.",)


def _note(**changes) -> pdf.PdfNote:
    fields = {"title": "SOAP session note · 6 May 2024",
              "facts": (("Session", "2024-05-06 09:30 (50 min)"), ("Client", CLIENT)),
              "sections": SECTIONS,
              "addenda": (pdf.PdfAddendum("2024-05-08 10:00", "Ana Pérez, PhD", "Called back: sleeping better."),),
              "signature": SIGNATURE, "transcript": None}
    return pdf.PdfNote(**{**fields, **changes})


def _text(body: bytes) -> str:
    """All pages' text with runs of whitespace made single spaces (line wraps vary)."""
    assert body.startswith(b"%PDF-")
    pages = PdfReader(io.BytesIO(body)).pages
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))


@pytest.fixture(scope="module")
def signed() -> str:
    return _text(pdf.note_pdf(_note(), practice="Praxis Nord – Psychotherapie"))


def test_the_pdf_has_the_practice_client_sections_in_order_addenda_and_signature(signed):
    assert "Praxis Nord – Psychotherapie" in signed
    assert f"Client: {CLIENT}" in signed
    positions = [signed.index(title) for title, _ in SECTIONS]
    assert positions == sorted(positions)
    for _, text in SECTIONS[:3]:
        assert text in signed
    assert "Called back: sleeping better." in signed and "2024-05-08 10:00, Ana Pérez, PhD" in signed
    assert SIGNATURE in signed and "Signature:" in signed
    # The signature block closes the note, after the addenda.
    assert signed.index("Called back") < signed.index(SIGNATURE)
    assert "DRAFT" not in signed and "zebracorn" not in signed


def test_the_transcript_follows_the_note_only_when_given():
    text = _text(pdf.note_pdf(_note(transcript=TRANSCRIPT)))
    assert "Transcript" in text and "zebracorn" in text
    assert text.index(SIGNATURE) < text.index("zebracorn")


def test_a_draft_is_marked_on_every_page_and_has_no_signature():
    body = pdf.note_pdf(_note(signature=None, transcript=TRANSCRIPT * 120))
    pages = PdfReader(io.BytesIO(body)).pages
    assert len(pages) > 2
    assert all("DRAFT — not signed" in page.extract_text() for page in pages)
    assert "Signed by" not in _text(body)


def test_an_unset_practice_name_prints_nothing_in_its_place(signed):
    text = _text(pdf.note_pdf(_note(), practice=""))
    assert text.startswith("SOAP session note")
    assert "Practice" not in text and "Praxis" not in text


def test_note_sections_drop_template_prompts_as_the_text_export_does():
    note = {"sections": [{"key": "s", "title": "Subjective", "text": "[What the client reports]",
                          "prompt": "[What the client reports]"},
                         {"key": "plan", "title": "", "text": " Worry log "}]}
    assert pdf.note_sections(note) == (("Subjective", "Not completed."), ("plan", "Worry log"))


def test_a_record_has_a_cover_and_each_note_in_the_order_given():
    cover = pdf.PdfCover(clinician="Ana Pérez, PhD", client=CLIENT, first="2024-05-06",
                         last="2024-05-20", count=2)
    first = _note(title="Week one note", signature="Signed by Ana Pérez, PhD on 2024-05-06")
    second = _note(title="Week three note", signature="Signed by Ana Pérez, PhD on 2024-05-20")
    text = _text(pdf.record_pdf(cover, [first, second], practice="Praxis Nord"))
    assert text.index("Client record") < text.index("Week one note") < text.index("Week three note")
    for line in ("Practice: Praxis Nord", "Clinician: Ana Pérez, PhD", f"Client: {CLIENT}",
                 "Sessions: 2024-05-06 to 2024-05-20", "Signed notes: 2"):
        assert line in text


def test_a_missing_font_is_refused_with_the_package_to_install(tmp_path):
    with pytest.raises(pdf.PdfFontError, match="fonts-dejavu-core"):
        pdf.note_pdf(_note(), fonts=tmp_path)
