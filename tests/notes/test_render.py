"""Notes as text and Markdown (appliance/notes/render.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written cases.
"""

from __future__ import annotations

from appliance.notes import render
from appliance.transcript import RiskFlag
from tests.notes.test_draft import make_draft


def test_text_export_is_marked_draft_until_signed(testdata):
    note = make_draft(testdata, "SOAP")
    text = render.note_to_text(note)
    assert text.startswith("DRAFT — NOT SIGNED\n")
    assert "Objective\n---------\n" in text and "[Your clinical impression" in text
    signed = dict(note, status="signed", signed_by="Dr. Rivera", signed_at="2024-05-03 08:10")
    assert render.note_to_text(signed).startswith("Signed by Dr. Rivera on 2024-05-03 08:10\n")


def test_markdown_export_escapes_transcript_text(testdata):
    flag = RiskFlag("suicide", 1.0, 2.0, "Client", "I *really* want to die <script>", False, "want to die")
    markdown = render.note_to_markdown(make_draft(testdata, "SOAP", flags=[flag]))
    assert "> **DRAFT — not signed**" in markdown
    assert "## Objective" in markdown
    assert r"I \*really\* want to die \<script\>" in markdown
    assert "<script>" not in markdown
    lines = markdown.splitlines()
    item = next(i for i, line in enumerate(lines) if line.startswith("- 0:01 Client"))
    assert lines[item - 1] == ""  # a blank line before the list, so it renders as one
