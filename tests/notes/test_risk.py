"""Risk-language flags (appliance/notes/risk.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written cases.
"""

from __future__ import annotations

import pytest

from appliance.notes import risk
from appliance.transcript import RiskFlag
from tests.support.dialogue import said, transcript


def flags_for(text: str) -> list[RiskFlag]:
    return risk.find_risk_flags([said(text)])


# --- silences ----------------------------------------------------------------------

def test_sleep_session_surfaces_the_death_wish_and_the_denial(testdata):
    flags = risk.find_risk_flags(transcript(testdata, "sleep"))
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
    assert risk.find_risk_flags(transcript(testdata, "quiet")) == []


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
    [flag] = risk.find_risk_flags([segment])
    assert flag.quote == "Sometimes I want to die."
    assert (flag.start, flag.end, flag.speaker, flag.term) == (42.0, 44.0, "Client", "want to die")


def test_a_yes_to_a_risk_question_is_flagged():
    segments = [said("Do you ever think about killing yourself?", "Clinician", 0.0),
                said("Yes, sometimes.", "Client", 3.0)]
    [flag] = risk.find_risk_flags(segments)
    assert (flag.category, flag.negated, flag.speaker) == ("suicide", False, "Client")
    assert flag.quote == "Yes, sometimes."
    assert flag.context == "Do you ever think about killing yourself?"


def test_no_to_a_safety_question_is_not_a_denial():
    segments = [said("Do you feel safe at home?", "Clinician", 0.0),
                said("Not really. He yells a lot.", "Client", 3.0)]
    [flag] = risk.find_risk_flags(segments)
    assert (flag.category, flag.negated) == ("abuse", False)
    segments[1] = said("Yes, I do.", "Client", 3.0)
    assert [f.negated for f in risk.find_risk_flags(segments)] == [True]


def test_ordinary_questions_are_not_risk_questions():
    segments = [said("Are you using the worksheet?", "Clinician", 0.0), said("Yes.", "Client", 3.0)]
    assert risk.find_risk_flags(segments) == []
