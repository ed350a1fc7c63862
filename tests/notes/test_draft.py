"""The draft note in each template (appliance/notes/draft.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written cases.
"""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.notes import draft, facts, risk
from tests.support.dialogue import DURATIONS, transcript


def make_draft(testdata, template: str, **overrides) -> dict:
    segments = transcript(testdata, "sleep")
    silences = facts.find_silences(segments, DURATIONS["sleep"], 5.0)
    arguments = dict(
        session_date=dt.datetime(2024, 5, 2, 14, 0),
        duration_s=DURATIONS["sleep"],
        metrics=facts.compute_metrics(segments, DURATIONS["sleep"], silences),
        silences=silences,
        flags=risk.find_risk_flags(segments),
        bookmarks=facts.align_bookmarks([83.0], segments),
        speakers=["clinician", "client"],
        clinician="Dr. Rivera",
        silence_threshold_s=5.0,
    )
    arguments.update(overrides)
    return draft.build_draft_note(template, **arguments)


@pytest.mark.parametrize("template, auto_key, keys", [
    ("SOAP", "objective", ["subjective", "objective", "assessment", "plan"]),
    ("DAP", "data", ["data", "assessment", "plan"]),
    ("BIRP", "behavior", ["behavior", "intervention", "response", "plan"]),
])
def test_draft_puts_facts_in_one_section_and_prompts_elsewhere(testdata, template, auto_key, keys):
    note = make_draft(testdata, template)
    assert note["template"] == template and note["status"] == "draft"
    assert [s["key"] for s in note["sections"]] == keys
    [auto] = [s for s in note["sections"] if s["auto"]]
    assert auto["key"] == auto_key
    for fact in ("1:44", "Silences over 5 s: 2", "longest silence 19 s", "better off without me",
                 "denial", "1:23", "Talk time: clinician"):
        assert fact in auto["text"]
    for section in note["sections"]:
        if not section["auto"]:
            assert section["text"] == section["prompt"]
            assert section["text"].startswith("[") and section["text"].endswith("]")
    assert "2024-05-02 14:00" in note["header"] and "Dr. Rivera" in note["header"]


def test_draft_says_when_the_screen_was_off_or_found_nothing(testdata):
    def auto(note):
        return next(s["text"] for s in note["sections"] if s["auto"])

    assert "turned off" in auto(make_draft(testdata, "SOAP", flags=None))
    assert "none found" in auto(make_draft(testdata, "SOAP", flags=[]))


def test_unknown_template_is_rejected(testdata):
    with pytest.raises(ValueError, match="SOAP, DAP, BIRP"):
        make_draft(testdata, "narrative")
    assert make_draft(testdata, "dap")["template"] == "DAP"
