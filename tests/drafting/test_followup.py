"""What was planned last time, found in this session's transcript: plan items, matching, the check.

Pure logic on the shared client series: week1's plan against week2's reference
transcript, week2's against week3's, as ``series/facts.json`` says they were followed up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from appliance.clients.history import SignedNote
from appliance.drafting import context, followup
from appliance.notes import times
from appliance.notes.facts import transcript_lines
from tests.drafting.conftest import SERIES, series_segments

FACTS = json.loads((SERIES / "facts.json").read_text())["sessions"]
SOURCE = "Plan of the note signed on 5 Oct 2026"


def lines(week: str):
    return transcript_lines(series_segments(week))


def signed_plan(text: str, key: str = "plan", title: str = "Plan") -> SignedNote:
    note = {"sections": [{"key": "subjective", "title": "Subjective", "text": "Panic at work."},
                         {"key": key, "title": title, "text": text,
                          "prompt": "[Next steps, homework, referrals, safety plan if needed, next session.]"}]}
    moment = datetime(2026, 10, 5, 15, 0, tzinfo=UTC)
    return SignedNote(7, moment, moment, note)


def test_plan_items_come_from_lines_bullets_semicolons_and_sentences_without_prompts():
    text = ("- Slow breathing twice a day\n"
            "* anxiety log from zero to ten (1:07)\n"
            "[Next steps, homework, referrals, safety plan if needed, next session.]\n"
            "Homework: walk after lunch; call the GP. Book the next appointment.\n"
            "Not discussed.\n")
    assert followup.plan_items(text) == ["Slow breathing twice a day", "anxiety log from zero to ten",
                                         "walk after lunch", "call the GP",
                                         "Book the next appointment"]
    # Only the prompt left (an unfilled plan): no item at all.
    assert followup.plan_items("[Next steps, homework, referrals]") == []


def test_a_custom_template_gives_its_homework_section():
    note = {"sections": [{"key": "focus", "title": "Focus", "text": "Arguments at dinner."},
                         {"key": "tasks", "title": "Homework for next time", "text": "Daily check-in"}]}
    assert followup.note_plan_items(note) == ["Daily check-in"]


def test_simple_stems_join_the_forms_of_a_word():
    assert {followup.stem(w) for w in ("breathing", "breathe", "breathes")} == {"breath"}
    assert followup.stem("logs") == followup.stem("log") == "log"
    assert followup.stem("stairs") == "stair" and followup.stem("running") == "run"


@pytest.mark.parametrize(("planned", "session"), [("week1", "week2"), ("week2", "week3")])
def test_the_series_plan_is_found_where_the_next_session_took_it_up(planned, session):
    transcript = lines(session)
    made = followup.statements(FACTS[planned]["plan"], transcript, SOURCE)
    discussed = [s for s in made if not s["absent"]]
    # facts.json: what the next session followed up ("breathing log"; "stairs exercise", "log")
    for topic in FACTS[session]["followed_up"]:
        words = {followup.stem(w) for w in topic.split()}
        assert any(words & {followup.stem(w) for w in s["matched"]} for s in discussed), topic
    starts = {line.start for line in transcript}
    for statement in discussed:
        assert statement["verified"] and statement["problem"] is None
        assert len(statement["citations"]) == 1 and statement["citations"][0] in starts
        cited = next(line for line in transcript if line.start == statement["citations"][0])
        assert all(word in cited.text.lower() for word in statement["matched"])
        assert statement["text"].endswith(f"(from last session): discussed at "
                                          f"{times.clock(cited.start)}")
        assert followup.check(statement, transcript) == (True, None)


def test_the_best_line_shares_the_most_key_words_and_the_earliest_wins_a_tie():
    transcript = lines("week3")
    # "track drinks" is in one line only, the last one but one of week3.
    found = followup.best_line("track drinks each night", transcript)
    assert found is not None and "track your drinks" in found.line.text
    assert set(found.shared) == {"track", "drinks"}
    # "log" is in the first and a later line: the first one.
    assert followup.best_line("keep the log", transcript).line.start == transcript[0].start


def test_an_item_nobody_raised_is_not_discussed_and_cites_nothing():
    transcript = lines("week1")
    [made] = followup.statements(["track drinks each night"], transcript, SOURCE)
    assert made["text"] == "Track drinks each night (from last session): not discussed in this session."
    assert made["citations"] == [] and made["verified"] is True
    # The absence is checked: against a transcript that does raise it, the claim fails.
    ok, problem = followup.check(made, lines("week3"))
    assert not ok and "taken up at" in problem


def test_the_check_refuses_a_citation_moved_to_another_line_or_to_no_line():
    transcript = lines("week2")
    [made] = followup.statements(["slow breathing twice a day"], transcript, SOURCE)
    moved = {**made, "citations": [transcript[3].start]}  # the grocery store line
    assert followup.check(moved, transcript)[0] is False
    nowhere = {**made, "citations": [transcript[0].start + 1.5]}  # no line starts there
    assert followup.check(nowhere, transcript) == (False, "it cites no transcript line")
    wrong_words = {**made, "matched": ["grocery"]}
    assert followup.check(wrong_words, transcript)[0] is False


def test_the_section_says_where_the_plan_came_from_and_lists_each_item():
    previous = signed_plan("- slow breathing twice a day\n- anxiety log from zero to ten\n"
                           "- track drinks each night")
    section = context.section_from(previous, lines("week2"))
    assert section is not None and section["key"] == "followup"
    assert section["title"] == "From last session"
    assert section["text"].splitlines() == [
        f"{SOURCE}:",
        "Slow breathing twice a day (from last session): discussed at 0:00",
        "Anxiety log from zero to ten (from last session): discussed at 0:00",
        "Track drinks each night (from last session): not discussed in this session.",
    ]
    assert all(s["source"] == SOURCE for s in section["statements"])
    # A plan holding only its prompt gives no section.
    assert context.section_from(signed_plan(""), lines("week2")) is None


def test_putting_the_section_keeps_what_the_clinician_typed_in_it():
    note = {"sections": [{"key": "subjective", "text": "x", "machine_text": "x"}]}
    section = context.section_from(signed_plan("- keep the log"), lines("week3"))
    assert context.put(note, section) and note["sections"][0]["key"] == "followup"
    note["sections"][0]["text"] = "Log reviewed together; kept daily."
    redone = context.section_from(signed_plan("- keep the log\n- walk daily"), lines("week3"))
    context.put(note, redone)
    assert note["sections"][0]["text"] == "Log reviewed together; kept daily."
    assert len(note["sections"][0]["statements"]) == 2
    assert context.put(note, None) is False  # typed: not taken out either
