"""Silences, metrics and bookmarks (appliance/notes/facts.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written cases.
"""

from __future__ import annotations

import dataclasses

import pytest

from appliance.notes import facts
from appliance.transcript import Silence
from tests.support.dialogue import DURATIONS, said, transcript


def test_sleep_silences_are_the_two_long_pauses(testdata):
    silences = facts.find_silences(transcript(testdata, "sleep"), DURATIONS["sleep"], 5.0)
    assert [round(s.duration) for s in silences] == [9, 19]  # 8 s and 18 s of silence plus gaps
    assert silences[0].start == pytest.approx(24.32)
    assert silences[1].end == pytest.approx(80.26)


def test_quiet_silences_include_the_long_ones(testdata):
    silences = facts.find_silences(transcript(testdata, "quiet"), DURATIONS["quiet"], 10.0)
    durations = [s.duration for s in silences]
    assert len(silences) == 3
    assert durations == pytest.approx([36.06, 60.71, 26.03], abs=0.01)


def test_silences_at_the_start_and_end_of_the_recording_count():
    segments = [said("Hello.", start=12.0)]
    silences = facts.find_silences(segments, 30.0, 5.0)
    assert silences == [Silence(0.0, 12.0), Silence(14.0, 30.0)]
    assert facts.find_silences([], 30.0, 5.0) == [Silence(0.0, 30.0)]


def test_overlapping_segments_are_not_silence():
    segments = [said("a", start=0.0), {"start": 1.0, "end": 9.0, "speaker": "B", "text": "b"},
                said("c", start=8.5)]
    assert facts.find_silences(segments, 10.5, 0.1) == []


def test_silence_threshold_and_bad_segments_are_checked():
    with pytest.raises(ValueError, match="threshold_s"):
        facts.find_silences([], 10.0, 0)
    with pytest.raises(ValueError, match="segment 0 ends before it starts"):
        facts.find_silences([{"start": 5.0, "end": 4.0, "speaker": "A", "text": ""}], 10.0, 1.0)


# --- metrics -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sleep", "quiet"])
def test_metrics_of_the_reference_sessions_are_sane(testdata, name):
    segments = transcript(testdata, name)
    silences = facts.find_silences(segments, DURATIONS[name], 5.0)
    metrics = facts.compute_metrics(segments, DURATIONS[name], silences)
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
    metrics = facts.compute_metrics(segments, 100.0, [])
    assert metrics.turns == 2
    assert metrics.words == {"A": 6, "B": 1}
    assert metrics.words_per_minute == {"A": 6.0, "B": 2.0, "overall": pytest.approx(4.7)}
    assert metrics.talk_share == {"A": pytest.approx(2 / 3), "B": pytest.approx(1 / 3)}
    assert metrics.longest_silence_s == 10.0  # measured, even with no silence listed
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.turns = 3


def test_metrics_of_an_empty_session():
    metrics = facts.compute_metrics([], 60.0, [Silence(0.0, 60.0)])
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

    metrics = facts.compute_metrics([Line(0, 6, None, "hello there")], 10.0, [])
    assert metrics.talk_time_s == {facts.UNKNOWN_SPEAKER: 6.0}


# --- bookmarks -------------------------------------------------------------------------


def test_bookmarks_point_at_the_segment_under_or_before_them(testdata):
    segments = transcript(testdata, "sleep")
    marks = facts.align_bookmarks([90.0, 0.1, 70.0], segments)
    assert [m["offset"] for m in marks] == [0.1, 70.0, 90.0]
    assert marks[0]["segment_index"] is None and marks[0]["snippet"] == ""
    # A mark during a silence points at what was said last.
    assert segments[marks[1]["segment_index"]]["text"].startswith("Mm-hmm. So part of you")
    assert marks[2]["speaker"] == "clinician"
    assert marks[2]["snippet"].startswith("Thank you for telling me that.")


def test_bookmark_index_refers_to_the_input_order_and_snippets_are_short():
    segments = [said("second " * 40, start=10.0), said("first", start=0.0)]
    mark = facts.align_bookmarks([11.0], segments)[0]
    assert mark["segment_index"] == 0
    assert len(mark["snippet"]) <= 120 and mark["snippet"].endswith("…")
    with pytest.raises(ValueError, match="bookmark"):
        facts.align_bookmarks([-1.0], segments)


# --- risk language -------------------------------------------------------------------------
