"""Corrections of a transcript (appliance/notes/corrections.py): pure logic, real risk lexicon."""

from __future__ import annotations

import pytest

from appliance.notes import corrections
from appliance.notes.corrections import CorrectionError, Rules
from appliance.transcript import Bookmark, Segment, TranscriptResult

RULES = Rules(silence_threshold_s=5.0)


def _result(lines: list[tuple[float, float, str, str]], marks: tuple[float, ...] = ()) -> TranscriptResult:
    """A recognised result: its facts worked out as the pipeline does."""
    bare = TranscriptResult(
        duration_s=60.0, model="tiny.en", language="en",
        segments=tuple(Segment(*line) for line in lines),
        bookmarks=tuple(Bookmark(offset, None, None, "", "") for offset in marks))
    return corrections.recompute(bare, bare.segments, RULES)


LINES = [
    (0.0, 4.0, "Speaker 1", "How have the mornings been?"),
    (5.0, 9.0, "Speaker 2", "I wake up around free in the morning."),
    (10.0, 14.0, "Speaker 1", "And during the day?"),
    (30.0, 40.0, "Speaker 2", "I just feel like a virgin, most of the time."),
]


def test_editing_a_line_changes_its_words_and_keeps_its_time():
    fixed = corrections.edit_line(_result(LINES), 1, "I wake up around three in the morning.")
    line = fixed.result.segments[1]
    assert (line.start, line.end, line.speaker) == (5.0, 9.0, "Speaker 2")
    assert line.text == "I wake up around three in the morning."
    assert (fixed.action, fixed.summary) == ("edit", "line 2 text")
    assert "three" not in fixed.summary, "the summary never holds client words"


def test_changing_a_line_speaker_moves_its_talk_time_and_words():
    before = _result(LINES)
    fixed = corrections.edit_line(before, 2, LINES[2][3], speaker="Speaker 2")
    assert fixed.summary == "line 3 speaker"
    talk, words = fixed.result.metrics.talk_time_s, fixed.result.metrics.words
    assert talk["Speaker 1"] == before.metrics.talk_time_s["Speaker 1"] - 4.0
    assert talk["Speaker 2"] == before.metrics.talk_time_s["Speaker 2"] + 4.0
    assert words["Speaker 2"] == before.metrics.words["Speaker 2"] + 4
    assert fixed.result.metrics.turns == 2  # Speaker 1, then Speaker 2 three times


def test_a_line_break_splits_the_line_and_shares_its_time_by_characters():
    fixed = corrections.edit_line(_result(LINES), 3, "I just feel\n\nlike a virgin, most of the time.")
    parts = fixed.result.segments[3:]
    assert [p.text for p in parts] == ["I just feel", "like a virgin, most of the time."]
    # 11 and 32 characters of 43 share the ten seconds 30-40.
    assert (parts[0].start, parts[0].end, parts[1].end) == (30.0, 32.56, 40.0)
    assert parts[1].start == parts[0].end and {p.speaker for p in parts} == {"Speaker 2"}
    assert (fixed.action, fixed.summary) == ("split", "line 4 split into 2")


def test_merging_keeps_the_first_speaker_and_spans_both_lines():
    fixed = corrections.merge_with_next(_result(LINES), 1)
    merged = fixed.result.segments[1]
    assert len(fixed.result.segments) == 3
    assert merged == Segment(5.0, 14.0, "Speaker 2",
                             "I wake up around free in the morning. And during the day?")
    assert fixed.summary == "lines 2 and 3 merged"


def test_renaming_a_speaker_renames_every_line_and_the_metrics():
    fixed = corrections.rename_speaker(_result(LINES), "Speaker 1", "Dr Rivera")
    assert [s.speaker for s in fixed.result.segments] == [
        "Dr Rivera", "Speaker 2", "Dr Rivera", "Speaker 2"]
    assert set(fixed.result.metrics.talk_time_s) == {"Dr Rivera", "Speaker 2"}
    assert fixed.summary == "speaker 1 renamed" and "Rivera" not in fixed.summary


def test_renaming_onto_a_name_in_use_is_refused_unless_merging_was_asked_for():
    before = _result(LINES)
    with pytest.raises(CorrectionError, match="already speaks in this session.*merge them"):
        corrections.rename_speaker(before, "Speaker 1", "Speaker 2")
    merged = corrections.rename_speaker(before, "Speaker 1", "Speaker 2", merge=True)
    assert merged.result.speakers == ("Speaker 2",)
    assert merged.summary == "speaker 1 merged into speaker 2"


def test_swapping_speakers_exchanges_their_lines():
    fixed = corrections.swap_speakers(_result(LINES), "Speaker 1", "Speaker 2")
    assert [s.speaker for s in fixed.result.segments] == [
        "Speaker 2", "Speaker 1", "Speaker 2", "Speaker 1"]
    assert fixed.summary == "speakers 1 and 2 swapped"


@pytest.mark.parametrize("change, message", [
    (lambda r: corrections.edit_line(r, 9, "x"), "There is no line 10: this transcript has 4"),
    (lambda r: corrections.edit_line(r, 1, " \n "), "cannot be empty.*merge"),
    (lambda r: corrections.edit_line(r, 1, "x" * 5001), "5001 characters.*at most 5000"),
    (lambda r: corrections.edit_line(r, 1, LINES[1][3]), "unchanged"),
    (lambda r: corrections.merge_with_next(r, 3), "last line"),
    (lambda r: corrections.rename_speaker(r, "Speaker 1", "  "), "cannot be empty"),
    (lambda r: corrections.rename_speaker(r, "Nobody", "X"), "not in this transcript"),
    (lambda r: corrections.swap_speakers(r, "Speaker 1", "Speaker 1"), "two different"),
])
def test_bad_corrections_get_one_clear_message(change, message):
    with pytest.raises(CorrectionError, match=message):
        change(_result(LINES))


RISK = [
    (0.0, 4.0, "Speaker 1", "How have things been?"),
    (5.0, 12.0, "Speaker 2", "Sometimes I want to kill myself."),
    (13.0, 16.0, "Speaker 1", "Thank you for telling me."),
]


def test_a_correction_that_adds_risk_language_adds_a_flag():
    before = _result(LINES)
    assert [f.start for f in before.flags] == [30.0]  # the lexicon hears "virgin" for "burden"
    fixed = corrections.edit_line(before, 1, "I wake up at three and I want to die.")
    assert [(f.start, f.removed) for f in fixed.result.flags] == [(5.0, False), (30.0, False)]


def test_correcting_a_mishearing_inside_a_flag_keeps_it_standing_with_the_right_words():
    fixed = corrections.edit_line(_result(LINES), 3, "I just feel like a burden, most of the time.")
    assert [(f.quote, f.removed) for f in fixed.result.flags] == [
        ("I just feel like a burden, most of the time.", False)]


def test_a_flag_a_correction_removes_stays_until_confirmed():
    before = _result(RISK)
    assert before.flags and not any(f.removed for f in before.flags)
    fixed = corrections.edit_line(before, 1, "Sometimes I want to fill my shelf.").result
    assert fixed.flags and all(f.removed for f in fixed.flags), "kept, marked removed"
    assert [f.quote for f in fixed.flags] == [f.quote for f in before.flags]
    assert corrections.unconfirmed_removals(fixed) == tuple(range(len(fixed.flags)))
    confirmed = fixed
    while corrections.unconfirmed_removals(confirmed):
        confirmed = corrections.confirm_removal(
            confirmed, corrections.unconfirmed_removals(confirmed)[0]).result
    assert confirmed.flags == () and confirmed.segments == fixed.segments
    with pytest.raises(CorrectionError, match="not awaiting confirmation"):
        corrections.confirm_removal(before, 0)


def test_renaming_or_rewording_around_a_flag_keeps_it_standing():
    before = _result(RISK)
    renamed = corrections.rename_speaker(before, "Speaker 2", "Client").result
    assert [(f.category, f.speaker, f.removed) for f in renamed.flags] == [
        (f.category, "Client", False) for f in before.flags]
    reworded = corrections.edit_line(before, 1, "Sometimes I really want to kill myself.").result
    assert not any(f.removed for f in reworded.flags)


def test_a_removed_flag_that_a_later_correction_restores_is_standing_again():
    removed = corrections.edit_line(_result(RISK), 1, "Sometimes I want to fill my shelf.").result
    back = corrections.edit_line(removed, 1, RISK[1][3]).result
    assert back.flags and not any(f.removed for f in back.flags)


def test_bookmarks_follow_their_line_through_a_merge_and_a_split():
    before = _result(LINES, marks=(31.0,))
    assert before.bookmarks[0].segment_index == 3
    merged = corrections.merge_with_next(before, 0).result
    assert merged.bookmarks[0].segment_index == 2
    assert merged.bookmarks[0].snippet == LINES[3][3]
    split = corrections.edit_line(before, 3, "I just feel\nlike a very tired person.").result
    assert split.bookmarks[0].segment_index == 3 and split.bookmarks[0].snippet == "I just feel"


def test_a_merge_removes_the_silence_it_covers():
    before = _result(LINES)
    assert any(s.start == 14.0 and s.end == 30.0 for s in before.silences)
    merged = corrections.merge_with_next(before, 2).result
    assert not any(s.start < 30.0 and s.end > 14.0 for s in merged.silences)
    assert merged.metrics.silence_count == before.metrics.silence_count - 1


def test_a_rename_rewrites_the_facts_a_redraft_starts_from():
    """A Redraft starts from the transcript's own draft note: after a rename it must not
    restate the old talk shares or speakers (appliance/transcription/drafts.py)."""
    from appliance.notes.draft import build_draft_note

    recognised = _result(LINES)
    metrics = recognised.metrics
    note = build_draft_note("SOAP", session_date="2026-10-05", duration_s=60.0,
                            metrics=metrics, silences=list(recognised.silences),
                            flags=list(recognised.flags), bookmarks=[],
                            speakers=["Speaker 1", "Speaker 2"], silence_threshold_s=5.0)
    before = TranscriptResult(**{**{f: getattr(recognised, f) for f in (
        "duration_s", "model", "language", "segments", "silences", "metrics", "flags",
        "bookmarks")}, "note": note})
    renamed = corrections.rename_speaker(before, "Speaker 1", "Dr Rivera", rules=RULES).result

    facts = next(s["text"] for s in renamed.note["sections"] if s["auto"])
    share = round(100 * metrics.talk_share["Speaker 1"])
    assert f"Dr Rivera 0:08 ({share}%)" in facts and "Speaker 1" not in facts
    assert "Speakers: Dr Rivera, Speaker 2" in renamed.note["header"]
    assert before.note["sections"] != renamed.note["sections"]  # the original is untouched
