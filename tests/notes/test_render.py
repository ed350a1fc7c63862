"""Notes as text and Markdown (appliance/notes/render.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written cases.
"""

from __future__ import annotations

import pytest

from appliance.notes import render
from appliance.transcript import RiskFlag
from tests.notes.test_draft import make_draft


def test_text_export_is_marked_draft_until_signed(testdata):
    note = make_draft(testdata, "SOAP")
    text = render.note_to_text(note)
    assert text.startswith("DRAFT — NOT SIGNED\n")
    assert "Objective\n---------\nRecorded duration:" in text
    assert "Assessment\n----------\nNot completed.\n" in text
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


def _flat(text: str) -> str:
    return " ".join(text.replace("\\", "").split())


@pytest.mark.parametrize("template", ["SOAP", "DAP", "BIRP"])
def test_exports_print_no_template_prompt_and_say_what_is_not_completed(testdata, template):
    note = make_draft(testdata, template)
    for body in (render.note_to_text(note), render.note_to_markdown(note)):
        for section in note["sections"]:
            assert section["prompt"].strip("[]") not in _flat(body), section["key"]
        unwritten = sum(not s["auto"] for s in note["sections"])
        assert body.count("Not completed.") == unwritten
    assert "*Not completed.*" in render.note_to_markdown(note)


def test_a_prompt_left_in_front_of_written_text_is_not_exported(testdata):
    note = make_draft(testdata, "SOAP")
    plan = note["sections"][3]
    plan["text"] = plan["prompt"] + "\nWeekly; sleep diary."
    text = render.note_to_text(note)
    assert "Plan\n----\nWeekly; sleep diary.\n" in text
    assert plan["prompt"] not in text


@pytest.mark.parametrize("text, filled", [
    ("", False),
    ("  \n\t ", False),
    ("{prompt}", False),
    ("  {prompt}\n\n", False),
    ("{spaced}", False),  # the prompt's words with other spacing and line breaks
    ("{bare}", False),  # the prompt without its brackets
    ("{upper}", False),
    ("Not discussed.", True),
    ("{prompt} Client declined to discuss it.", True),
    ("[Client asked to revisit next week.]", True),  # brackets alone do not make a prompt
])
def test_what_counts_as_filled(testdata, text, filled):
    note = make_draft(testdata, "SOAP")
    section = dict(note["sections"][0])
    prompt = section["prompt"]
    section["text"] = text.format(prompt=prompt, spaced="\n  ".join(prompt.split()),
                                  bare=prompt.strip("[]"), upper=prompt.upper())
    assert render.is_filled(section) is filled


def test_the_drafted_facts_count_as_filled_and_the_rest_is_named(testdata):
    note = make_draft(testdata, "BIRP")
    assert render.unfilled_sections(note) == ["Intervention", "Response", "Plan"]
    for section in note["sections"]:
        section["text"] = section["text"] if section["auto"] else "Written."
    assert render.unfilled_sections(note) == []
    # A section without title or prompt (an older note) is named by its key and must hold text.
    assert render.unfilled_sections({"sections": [{"key": "plan"}, {"key": "data", "text": "x"}]}) \
        == ["plan"]
