"""Silences, metrics, bookmarks, risk flags and draft notes (appliance/notes/build.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written sentences for the risk vocabulary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from appliance.notes import build
from appliance.notes.build import RiskFlag, Silence

DURATIONS = {"sleep": 104.35, "quiet": 143.41}


def transcript(testdata: Path, name: str) -> list[dict]:
    text = (testdata / "speech" / "dialogue" / f"{name}.txt").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines()]
    return [{"start": float(s), "end": float(e), "speaker": who, "text": words} for s, e, who, words in rows]


def said(text: str, speaker: str = "Client", start: float = 0.0) -> dict:
    return {"start": start, "end": start + 2.0, "speaker": speaker, "text": text}


def flags_for(text: str) -> list[RiskFlag]:
    return build.find_risk_flags([said(text)])


# --- silences ----------------------------------------------------------------------


def test_sleep_silences_are_the_two_long_pauses(testdata):
    silences = build.find_silences(transcript(testdata, "sleep"), DURATIONS["sleep"], 5.0)
    assert [round(s.duration) for s in silences] == [9, 19]  # 8 s and 18 s of silence plus gaps
    assert silences[0].start == pytest.approx(24.32)
    assert silences[1].end == pytest.approx(80.26)


def test_quiet_silences_include_the_long_ones(testdata):
    silences = build.find_silences(transcript(testdata, "quiet"), DURATIONS["quiet"], 10.0)
    durations = [s.duration for s in silences]
    assert len(silences) == 3
    assert durations == pytest.approx([36.06, 60.71, 26.03], abs=0.01)


def test_silences_at_the_start_and_end_of_the_recording_count():
    segments = [said("Hello.", start=12.0)]
    silences = build.find_silences(segments, 30.0, 5.0)
    assert silences == [Silence(0.0, 12.0), Silence(14.0, 30.0)]
    assert build.find_silences([], 30.0, 5.0) == [Silence(0.0, 30.0)]


def test_overlapping_segments_are_not_silence():
    segments = [said("a", start=0.0), {"start": 1.0, "end": 9.0, "speaker": "B", "text": "b"},
                said("c", start=8.5)]
    assert build.find_silences(segments, 10.5, 0.1) == []


def test_silence_threshold_and_bad_segments_are_checked():
    with pytest.raises(ValueError, match="threshold_s"):
        build.find_silences([], 10.0, 0)
    with pytest.raises(ValueError, match="segment 0 ends before it starts"):
        build.find_silences([{"start": 5.0, "end": 4.0, "speaker": "A", "text": ""}], 10.0, 1.0)


# --- metrics -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sleep", "quiet"])
def test_metrics_of_the_reference_sessions_are_sane(testdata, name):
    segments = transcript(testdata, name)
    silences = build.find_silences(segments, DURATIONS[name], 5.0)
    metrics = build.compute_metrics(segments, DURATIONS[name], silences)
    assert sum(metrics.talk_share.values()) == pytest.approx(1.0)
    assert set(metrics.talk_time_s) == {"clinician", "client"}
    spoken = sum(s["end"] - s["start"] for s in segments)
    assert sum(metrics.talk_time_s.values()) == pytest.approx(spoken, abs=0.05)
    assert metrics.turns == len(segments)  # the speakers alternate line by line
    assert metrics.word_count == sum(metrics.words.values()) > 0
    assert 80 < metrics.words_per_minute["overall"] < 250
    assert metrics.longest_silence_s == pytest.approx(max(s.duration for s in silences), abs=0.01)
    assert metrics.silence_count == len(silences)


def test_metrics_count_turns_words_and_rates():
    segments = [
        {"start": 0, "end": 30, "speaker": "A", "text": "one two three don't"},
        {"start": 30, "end": 60, "speaker": "A", "text": "Mm-hmm, five."},
        {"start": 60, "end": 90, "speaker": "B", "text": "six"},
    ]
    metrics = build.compute_metrics(segments, 100.0, [])
    assert metrics.turns == 2
    assert metrics.words == {"A": 6, "B": 1}
    assert metrics.words_per_minute == {"A": 6.0, "B": 2.0, "overall": pytest.approx(4.7)}
    assert metrics.talk_share == {"A": pytest.approx(2 / 3), "B": pytest.approx(1 / 3)}
    assert metrics.longest_silence_s == 10.0  # measured, even with no silence listed
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.turns = 3


def test_metrics_of_an_empty_session():
    metrics = build.compute_metrics([], 60.0, [Silence(0.0, 60.0)])
    assert metrics.talk_share == {} and metrics.word_count == 0
    assert metrics.longest_silence_s == 60.0
    assert metrics.words_per_minute == {"overall": 0.0}


def test_segments_may_be_objects_with_attributes():
    @dataclasses.dataclass
    class Line:
        start: float
        end: float
        speaker: str | None
        text: str

    metrics = build.compute_metrics([Line(0, 6, None, "hello there")], 10.0, [])
    assert metrics.talk_time_s == {build.UNKNOWN_SPEAKER: 6.0}


# --- bookmarks -------------------------------------------------------------------------


def test_bookmarks_point_at_the_segment_under_or_before_them(testdata):
    segments = transcript(testdata, "sleep")
    marks = build.align_bookmarks([90.0, 0.1, 70.0], segments)
    assert [m["offset"] for m in marks] == [0.1, 70.0, 90.0]
    assert marks[0]["segment_index"] is None and marks[0]["snippet"] == ""
    # A mark during a silence points at what was said last.
    assert segments[marks[1]["segment_index"]]["text"].startswith("Mm-hmm. So part of you")
    assert marks[2]["speaker"] == "clinician"
    assert marks[2]["snippet"].startswith("Thank you for telling me that.")


def test_bookmark_index_refers_to_the_input_order_and_snippets_are_short():
    segments = [said("second " * 40, start=10.0), said("first", start=0.0)]
    mark = build.align_bookmarks([11.0], segments)[0]
    assert mark["segment_index"] == 0
    assert len(mark["snippet"]) <= 120 and mark["snippet"].endswith("…")
    with pytest.raises(ValueError, match="bookmark"):
        build.align_bookmarks([-1.0], segments)


# --- risk language -------------------------------------------------------------------------


def test_sleep_session_surfaces_the_death_wish_and_the_denial(testdata):
    flags = build.find_risk_flags(transcript(testdata, "sleep"))
    death_wish = [f for f in flags if "better off without me" in f.quote]
    assert len(death_wish) == 1
    assert death_wish[0].category == "suicide" and not death_wish[0].negated
    assert death_wish[0].speaker == "client"
    assert death_wish[0].quote == "And honestly, some nights I think everyone would be better off without me."
    denial = [f for f in flags if f.negated]
    assert len(denial) == 1
    assert denial[0].category == "self-harm" and denial[0].speaker == "client"
    assert denial[0].quote.startswith("No, not like that")
    assert "hurting yourself" in denial[0].context
    assert flags == sorted(flags, key=lambda f: (f.start, f.category))


def test_quiet_session_has_no_risk_language(testdata):
    assert build.find_risk_flags(transcript(testdata, "quiet")) == []


@pytest.mark.parametrize("text, category", [
    ("I've thought about how I'd kill myself.", "suicide"),
    ("Some days I want to end my life.", "suicide"),
    ("Honestly they'd be better off if I wasn't here.", "suicide"),
    ("I wish I were dead.", "suicide"),
    ("I don't want to wake up tomorrow.", "suicide"),
    ("I just want to not be here anymore.", "suicide"),
    ("I wouldn't mind not waking up.", "suicide"),
    ("Sometimes I think everyone would be better off without me.", "suicide"),
    ("I've been feeling suicidal.", "suicide"),
    ("I'm a burden to everyone.", "suicide"),
    ("I cut myself last night.", "self-harm"),
    ("I've started cutting again.", "self-harm"),
    ("I burned myself with a lighter.", "self-harm"),
    ("I want to hurt myself.", "self-harm"),
    ("I could kill him for what he did.", "harm to others"),
    ("I'm going to hurt her.", "harm to others"),
    ("My stepdad hits me when he's drunk.", "abuse"),
    ("He hit me again on Sunday.", "abuse"),
    ("My uncle touched me when I was nine.", "abuse"),
    ("I was abused as a kid.", "abuse"),
    ("I've been drinking every day since March.", "substance crisis"),
    ("I can't stop drinking.", "substance crisis"),
    ("I relapsed at the weekend.", "substance crisis"),
    ("I'm using again.", "substance crisis"),
    ("The withdrawal shakes were bad.", "substance crisis"),
    ("I overdosed last year.", "substance crisis"),
])
def test_risk_vocabulary_is_flagged_and_not_negated(text, category):
    flags = flags_for(text)
    assert [(f.category, f.negated, f.quote) for f in flags] == [(category, False, text)]


@pytest.mark.parametrize("text, category", [
    ("I'm not suicidal.", "suicide"),
    ("I have no intention of hurting myself.", "self-harm"),
    ("I would never kill myself.", "suicide"),
    ("I don't think about suicide anymore.", "suicide"),
    ("I've never cut myself.", "self-harm"),
])
def test_denials_are_flagged_as_negated_not_dropped(text, category):
    flags = flags_for(text)
    assert [(f.category, f.negated) for f in flags] == [(category, True)]


def test_a_denial_and_a_wish_in_one_sentence_is_not_negated():
    flags = flags_for("I would never kill myself, but sometimes I wish I was dead.")
    assert [(f.category, f.negated, f.term) for f in flags] == [("suicide", False, "wish I was dead")]


def test_hedged_denial_is_not_taken_as_a_denial():
    assert [f.negated for f in flags_for("I'm not sure I won't hurt myself.")] == [False]


@pytest.mark.parametrize("text", [
    "I was just killing time before the appointment.",
    "That really touched me.",
    "It hit me that I was alone.",
    "We're cutting back on sugar.",
    "I cut myself off from my old friends.",
    "I nailed the interview, I killed it.",
])
def test_benign_idioms_are_not_flagged(text):
    assert flags_for(text) == []


def test_substance_abuse_is_a_substance_flag_not_abuse():
    assert [f.category for f in flags_for("There was substance abuse in my family.")] == ["substance crisis"]


def test_quote_is_the_whole_sentence_and_times_are_the_segment():
    segment = said("We talked about work. Sometimes I want to die. Anyway, the weekend was fine.", start=42.0)
    [flag] = build.find_risk_flags([segment])
    assert flag.quote == "Sometimes I want to die."
    assert (flag.start, flag.end, flag.speaker, flag.term) == (42.0, 44.0, "Client", "want to die")


def test_a_yes_to_a_risk_question_is_flagged():
    segments = [said("Do you ever think about killing yourself?", "Clinician", 0.0),
                said("Yes, sometimes.", "Client", 3.0)]
    [flag] = build.find_risk_flags(segments)
    assert (flag.category, flag.negated, flag.speaker) == ("suicide", False, "Client")
    assert flag.quote == "Yes, sometimes."
    assert flag.context == "Do you ever think about killing yourself?"


def test_no_to_a_safety_question_is_not_a_denial():
    segments = [said("Do you feel safe at home?", "Clinician", 0.0),
                said("Not really. He yells a lot.", "Client", 3.0)]
    [flag] = build.find_risk_flags(segments)
    assert (flag.category, flag.negated) == ("abuse", False)
    segments[1] = said("Yes, I do.", "Client", 3.0)
    assert [f.negated for f in build.find_risk_flags(segments)] == [True]


def test_ordinary_questions_are_not_risk_questions():
    segments = [said("Are you using the worksheet?", "Clinician", 0.0), said("Yes.", "Client", 3.0)]
    assert build.find_risk_flags(segments) == []


# --- draft notes ----------------------------------------------------------------------------


def draft(testdata, template: str, **overrides) -> dict:
    segments = transcript(testdata, "sleep")
    silences = build.find_silences(segments, DURATIONS["sleep"], 5.0)
    arguments = dict(
        session_date=dt.datetime(2024, 5, 2, 14, 0),
        duration_s=DURATIONS["sleep"],
        metrics=build.compute_metrics(segments, DURATIONS["sleep"], silences),
        silences=silences,
        flags=build.find_risk_flags(segments),
        bookmarks=build.align_bookmarks([83.0], segments),
        speakers=["clinician", "client"],
        clinician="Dr. Rivera",
        silence_threshold_s=5.0,
    )
    arguments.update(overrides)
    return build.build_draft_note(template, **arguments)


@pytest.mark.parametrize("template, auto_key, keys", [
    ("SOAP", "objective", ["subjective", "objective", "assessment", "plan"]),
    ("DAP", "data", ["data", "assessment", "plan"]),
    ("BIRP", "behavior", ["behavior", "intervention", "response", "plan"]),
])
def test_draft_puts_facts_in_one_section_and_prompts_elsewhere(testdata, template, auto_key, keys):
    note = draft(testdata, template)
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

    assert "turned off" in auto(draft(testdata, "SOAP", flags=None))
    assert "none found" in auto(draft(testdata, "SOAP", flags=[]))


def test_unknown_template_is_rejected(testdata):
    with pytest.raises(ValueError, match="SOAP, DAP, BIRP"):
        draft(testdata, "narrative")
    assert draft(testdata, "dap")["template"] == "DAP"


def test_text_export_is_marked_draft_until_signed(testdata):
    note = draft(testdata, "SOAP")
    text = build.note_to_text(note)
    assert text.startswith("DRAFT — NOT SIGNED\n")
    assert "Objective\n---------\n" in text and "[Your clinical impression" in text
    signed = dict(note, status="signed", signed_by="Dr. Rivera", signed_at="2024-05-03 08:10")
    assert build.note_to_text(signed).startswith("Signed by Dr. Rivera on 2024-05-03 08:10\n")


def test_markdown_export_escapes_transcript_text(testdata):
    flag = RiskFlag("suicide", 1.0, 2.0, "Client", "I *really* want to die <script>", False, "want to die")
    markdown = build.note_to_markdown(draft(testdata, "SOAP", flags=[flag]))
    assert "> **DRAFT — not signed**" in markdown
    assert "## Objective" in markdown
    assert r"I \*really\* want to die \<script\>" in markdown
    assert "<script>" not in markdown
    lines = markdown.splitlines()
    item = next(i for i, line in enumerate(lines) if line.startswith("- 0:01 Client"))
    assert lines[item - 1] == ""  # a blank line before the list, so it renders as one
