"""Risk-language flags (appliance/notes/risk.py).

Real reference transcripts of the synthetic sessions (../shared/testdata/speech/
dialogue/*.txt) plus hand-written cases.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from appliance.notes import risk, risk_match
from appliance.transcript import RiskFlag
from tests.support.dialogue import said, transcript


def flags_for(text: str) -> list[RiskFlag]:
    return risk.find_risk_flags([said(text)])


# --- silences ----------------------------------------------------------------------

def test_sleep_session_surfaces_the_death_wish_and_the_denial(testdata):
    flags = risk.find_risk_flags(transcript(testdata, "sleep"))
    death_wish = [f for f in flags if "better off without me" in f.quote]
    assert len(death_wish) == 1
    assert death_wish[0].category == "passive wish" and not death_wish[0].negated
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
    ("I've thought about how I'd kill myself.", "suicidal thoughts"),
    ("Some days I want to end my life.", "suicidal thoughts"),
    ("Honestly they'd be better off if I wasn't here.", "passive wish"),
    ("I wish I were dead.", "passive wish"),
    ("I don't want to wake up tomorrow.", "passive wish"),
    ("I just want to not be here anymore.", "passive wish"),
    ("I wouldn't mind not waking up.", "passive wish"),
    ("Sometimes I think everyone would be better off without me.", "passive wish"),
    ("I've been feeling suicidal.", "suicidal thoughts"),
    ("I'm a burden to everyone.", "passive wish"),
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
    ("I'm not suicidal.", "suicidal thoughts"),
    ("I have no intention of hurting myself.", "self-harm"),
    ("I would never kill myself.", "suicidal thoughts"),
    ("I don't think about suicide anymore.", "suicidal thoughts"),
    ("I've never cut myself.", "self-harm"),
])
def test_denials_are_flagged_as_negated_not_dropped(text, category):
    flags = flags_for(text)
    assert [(f.category, f.negated) for f in flags] == [(category, True)]


def test_a_denial_and_a_wish_in_one_sentence_is_not_negated():
    flags = flags_for("I would never kill myself, but sometimes I wish I was dead.")
    assert [(f.category, f.negated, f.term) for f in flags] == [
        ("passive wish", False, "wish I was dead"), ("suicidal thoughts", True, "kill myself")]


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
    assert (flag.category, flag.negated, flag.speaker) == ("suicidal thoughts", False, "Client")
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


# --- misheard phrases, means without trigger words, ambivalence (issue 13, item 4) ---

@pytest.mark.parametrize("heard, meant", [
    ("Some nights I think everyone would be mader off without me.", "better off without me"),
    ("No, but like that, I just feel like a virgin.", "feel like a burden"),
    ("I feel like such a burdon to my family.", "feel like a burden"),
])
def test_a_misheard_risk_phrase_is_flagged_and_says_what_it_was_heard_for(heard, meant):
    [flag] = [f for f in flags_for(heard) if f.category == "passive wish"]
    assert not flag.negated
    assert f"heard for: {meant}" in flag.term


@pytest.mark.slow
def test_tiny_en_transcript_of_the_sleep_session_still_shows_both_risk_lines(recognizer, testdata):
    """tiny.en hears "mader off without me" and "a virgin": both lines must still be flagged."""
    from faster_whisper import decode_audio

    audio = decode_audio(str(testdata / "speech" / "dialogue" / "sleep.mono.wav"))
    pieces = recognizer.transcribe(audio, recognizer.speech_regions(audio))
    heard = [{"start": p.start, "end": p.end, "text": p.text} for p in pieces]
    wishes = [f for f in risk.find_risk_flags(heard) if f.category == "passive wish" and not f.negated]
    reference = transcript(testdata, "sleep")
    said_at = {line["start"] for line in reference
               if "better off" in line["text"] or "a burden." in line["text"]}
    assert len(said_at) == 2
    for start in said_at:
        assert any(abs(f.start - start) < 2.0 for f in wishes), (start, heard)


@pytest.mark.parametrize("text", [
    "I hold off without me",  # too few words in common: not a mishearing
    "Everyone would be better off without him.",
    "I want to dine.",
    "I feel like a new person since the holiday.",
])
def test_near_misses_are_not_taken_for_misheard_risk_phrases(text):
    assert [f for f in flags_for(text) if f.category == "passive wish"] == []


@pytest.mark.parametrize("text", [
    "I've been saving up my sleeping pills.",
    "I counted my tablets last night.",
    "I know where my dad keeps the gun.",
    "I've picked a date.",
    "I keep thinking about jumping off the bridge.",
    "I stood on the ledge of the car park for a while.",
])
def test_means_and_method_are_flagged_without_the_words_suicide_kill_or_hurt(text):
    assert ("means or plan", False) in [(f.category, f.negated) for f in flags_for(text)]


@pytest.mark.parametrize("text, category", [
    ("I've been giving away my things.", "preparatory acts"),
    ("I wrote goodbye letters to my kids.", "preparatory acts"),
    ("I've been putting my affairs in order.", "preparatory acts"),
    ("What's the point of any of it?", "hopelessness"),
    ("Nothing is ever going to change.", "hopelessness"),
    ("I've been drinking four glasses of wine every night.", "substance crisis"),
    ("He threatened to kill me if I leave.", "abuse"),
])
def test_screened_categories_are_flagged(text, category):
    assert (category, False) in [(f.category, f.negated) for f in flags_for(text)]


@pytest.mark.parametrize("text", [
    "I killed it at work, the pitch went great.",
    "It's the height of the season at the shop.",
    "We finally set a date for the wedding.",
    "I'm saving up for a new bike.",
    "I'm counting the days until my holiday.",
    "I said goodbye to my sister at the airport.",
    "I wrote a letter to my landlord about the heating.",
    "He beat me at chess again.",
    "My nephew loves his water pistol.",
    "We went to the top of the tower for the view.",
])
def test_harmless_senses_of_risk_words_are_not_flagged(text):
    assert flags_for(text) == []


@pytest.mark.parametrize("text", [
    "Not a plan, it is more like a wish that everything would stop.",
    "No plan, I just wish I could disappear.",
    "I don't have a plan. It's more that I wish I wasn't here.",
])
def test_an_ambivalent_answer_is_a_passive_wish_with_no_plan_not_a_denial(text):
    flags = flags_for(text)
    assert [(f.category, f.negated) for f in flags] == [("passive wish, no plan stated", False)]


def test_an_ambivalent_answer_to_a_plan_question_is_not_a_denial():
    segments = [said("Have you thought about how you would do it, do you have a plan?", "Clinician", 0.0),
                said("Not a plan, it is more like a wish that everything would stop.", "Client", 4.0)]
    [flag] = risk.find_risk_flags(segments)
    assert (flag.category, flag.negated, flag.speaker) == ("passive wish, no plan stated", False, "Client")
    assert "a plan" in flag.context


def test_a_plain_denial_of_intent_stays_a_denial():
    assert [(f.category, f.negated) for f in flags_for("I have no intention of killing myself.")] == [
        ("suicidal thoughts", True)]


# --- the lexicon file ----------------------------------------------------------------

def test_every_lexicon_entry_has_a_category_phrases_and_a_reason():
    lexicon = risk_match.lexicon()
    categories = {p.category for p in lexicon.phrases}
    assert {"passive wish", "suicidal thoughts", "means or plan", "preparatory acts", "hopelessness",
            "self-harm", "harm to others", "abuse", "substance crisis"} <= categories
    assert all(reason.strip() for reasons in lexicon.reasons.values() for reason in reasons)


def test_the_lexicon_ships_as_package_data():
    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "risk_lexicon.toml" in config["tool"]["setuptools"]["package-data"]["appliance.notes"]


@pytest.mark.parametrize("text, message", [
    ('[[entry]]\ncategory = "abuse"\nphrases = ["hit me"]\n', "needs a one-line reason"),
    ('[[entry]]\ncategory = "abuse"\nreason = "r"\nphrases = ["Hit (me)"]\n', "cannot read"),
    ('[[entry]]\ncategory = "abuse"\nreason = "r"\nphrases = []\n', "non-empty list of phrases"),
    ("not toml [", "not valid TOML"),
])
def test_a_broken_lexicon_gives_one_clear_error(text, message):
    with pytest.raises(risk_match.LexiconError, match=re.escape(message)):
        risk_match.parse_lexicon(text)


def test_a_clinicians_question_is_not_a_disclosure_but_a_question_in_the_first_person_is():
    asked = [said("Do you have a plan?", "Clinician", 0.0), said("Yes, I do.", "Client", 3.0)]
    [flag] = risk.find_risk_flags(asked)
    assert (flag.category, flag.negated, flag.speaker) == ("means or plan", False, "Client")
    told = flags_for("Do you think everyone would be better off without me?")
    assert [(f.category, f.negated) for f in told] == [("passive wish", False)]
