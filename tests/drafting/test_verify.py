"""The grounding check: a drafted statement stays only if the lines it cites support it."""

from __future__ import annotations

import pytest

from appliance.drafting import parse, verify
from appliance.notes.facts import transcript_lines

LINES = transcript_lines([
    {"start": 5.0, "end": 8.0, "speaker": "Clinician", "text": "How did the week go?"},
    {"start": 9.4, "end": 14.0, "speaker": "Client",
     "text": "I slept badly, maybe four hours a night, and my sister Ana came to stay."},
    {"start": 65.2, "end": 70.0, "speaker": "Client",
     "text": "The doctor put me on sertraline last month."},
    {"start": 71.0, "end": 75.0, "speaker": "Clinician",
     "text": "Let us try the wind-down routine again this week."},
])
WORDS = verify.lower_case_words(LINES)


def check(answer_line: str) -> verify.Verdict:
    raws, _ = parse.statements(answer_line)
    assert len(raws) == 1
    return verify.verify(raws[0], LINES, WORDS)


@pytest.mark.parametrize("line", [
    "- The client reported sleeping about four hours a night. [0:09]",
    "- The client slept about 4 hours a night. [0:09]",
    "- The client's sister Ana came to stay. [0:09]",
    "- The client started sertraline last month. [1:05]",
    "- The client said \"I slept badly\". [0:09]",
    "- They agreed to try the wind-down routine again. [1:11]",
    "- Speaker 2 said they slept badly. [0:09]",  # a voice's label is no fact
    "- Sleep was bad and Ana came to stay. [0:09, 1:05]",
])
def test_supported_statements_are_kept_with_their_line_times(line):
    verdict = check(line)
    assert verdict.ok, verdict.problem
    assert verdict.citations and all(any(c == l.start for l in LINES) for c in verdict.citations)


@pytest.mark.parametrize("line, why", [
    ("- The client slept six hours a night. [0:09]", "number 6"),
    ("- The client's brother Tom came to stay. [0:09]", "“Tom”"),
    ("- The client takes fluoxetine. [1:05]", "fluoxetine"),
    ("- The client started sertraline last month. [0:09]", "sertraline"),
    ("- The client said \"I sleep well\". [0:09]", "I sleep well"),
    ("- The client was alert and oriented. [0:09]", "alert and oriented"),
    ("- The client meets criteria for insomnia. [0:09]", "insomnia"),
    ("- The client denied suicidal thoughts. [0:09]", "risk"),
    ("- The client said the canoe club moved and they missed it. [0:09]", "says more than"),
    ("- The client said the parrot woke them. [0:09]", "says more than"),
    ("- The client said they were ending their life. [0:09]", "risk"),
    ("- The client said they want to be dead. [0:09]", "risk"),
])
def test_a_planted_unsupported_statement_is_marked_with_the_reason(line, why):
    verdict = check(line)
    assert not verdict.ok and not verdict.dropped
    assert why in verdict.problem


@pytest.mark.parametrize("line", [
    "- The client slept badly.",               # no citation at all
    "- The client slept badly. [0:10]",        # no line starts at 0:10
    "- The client slept badly. [9:09]",
])
def test_a_statement_without_a_valid_citation_is_dropped(line):
    verdict = check(line)
    assert verdict.dropped and not verdict.ok


def test_citations_are_the_exact_start_times_of_the_cited_lines():
    verdict = check("- The routine will be tried again; sertraline started. [1:05; 1:11]")
    assert verdict.citations == (65.2, 71.0)


def test_words_given_to_the_wrong_speaker_are_marked():
    # The clinician's question is not the client's answer.
    verdict = check("- The client said the week went. [0:05]")
    assert not verdict.ok and "clinician's words to the client" in verdict.problem
    assert check("- The clinician asked how the week was going. [0:05]").ok


def test_a_name_at_the_start_of_a_sentence_is_still_checked():
    assert not check("- Maria came to stay with the client. [0:09]").ok
    assert check("- Ana came to stay with the client. [0:09]").ok
