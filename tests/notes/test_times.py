"""One rule for times and lengths (appliance/notes/times.py), shared by the note and the web page."""

from __future__ import annotations

import pytest

from appliance.notes import times
from appliance.notes.draft import build_draft_note
from appliance.transcript import Metrics, Silence


@pytest.mark.parametrize("seconds,clock,length", [
    (0, "0:00", "0 s"), (18.7, "0:18", "18 s"), (59.99, "0:59", "59 s"), (60, "1:00", "1 min"),
    (104.6, "1:44", "1 min 44 s"), (3000, "50:00", "50 min"), (3725.9, "1:02:05", "1 h 2 min 5 s"),
    (7200, "2:00:00", "2 h"), (None, "0:00", "0 s"), (-3, "0:00", "0 s"),
])
def test_a_length_names_the_same_whole_seconds_as_the_clock(seconds, clock, length):
    assert times.clock(seconds) == clock
    assert times.length(seconds) == length


def test_the_draft_note_cuts_times_to_the_second_like_the_transcript():
    metrics = Metrics(duration_s=104.6, talk_time_s={"Client": 40.9}, talk_share={"Client": 1.0},
                      longest_silence_s=18.9, words_per_minute={}, turns=0, word_count=0)
    note = build_draft_note("SOAP", session_date="2024-05-06", duration_s=104.6, metrics=metrics,
                            silences=[Silence(30.0, 48.9)], flags=[], bookmarks=[18.7],
                            speakers=["Client"])
    facts = next(s["text"] for s in note["sections"] if s["auto"])
    assert "Recorded duration: 1:44." in facts
    assert "  - 0:18" in facts, "a bookmark at 18.7 s is 0:18, as on the transcript page"
    assert "0:30–0:48 (18 s)" in facts and "longest silence 18 s" in facts
    assert "Client 0:40" in facts
