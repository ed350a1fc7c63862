"""Your interventions: the rules against hand-labelled lines, the figures, and the bad input."""

from __future__ import annotations

import pytest

from appliance.notes import intervention_rules as rules_mod
from appliance.notes.interventions import (
    NO_CLIENT,
    NO_LINES,
    Interventions,
    Unavailable,
    session_interventions,
)
from appliance.transcript import Segment, Silence, TranscriptResult
from tests.bench import bench_review
from tests.conftest import TESTDATA

SPEECH = TESTDATA / "speech"
# Measured on tests/data/interventions_labels.tsv (29 lines): precision, recall per label.
FLOORS = {"open": (1.0, 0.92), "closed": (0.90, 1.0), "reflection": (0.80, 1.0),
          "other": (1.0, 0.75)}


def _result(*lines: tuple[float, float, str, str], silences=()) -> TranscriptResult:
    return TranscriptResult(duration_s=max((e for _, e, _, _ in lines), default=0) + 1,
                            model="test", language="en",
                            segments=tuple(Segment(*line) for line in lines),
                            silences=tuple(Silence(a, b) for a, b in silences))


@pytest.fixture(scope="module")
def labelled():
    if not SPEECH.is_dir():
        pytest.skip(f"test data not found at {SPEECH}")
    labels = bench_review.load_labels()
    return labels, bench_review.compare(labels, SPEECH)


def test_every_clinician_line_of_the_dialogues_is_labelled(labelled):
    labels, _ = labelled
    for name in {name for name, _ in labels}:
        result = bench_review.reference(name, SPEECH)
        starts = {s.start for s in result.segments if s.speaker == "Clinician"}
        assert starts == {start for n, start in labels if n == name}, name


@pytest.mark.parametrize("label", sorted(FLOORS))
def test_rules_agree_with_the_hand_labels(labelled, label):
    labels, said = labelled
    score = bench_review.scores(labels, said)[label]
    precision, recall = FLOORS[label]
    assert score.precision >= precision, score
    assert score.recall >= recall, score


@pytest.mark.parametrize(("sentence", "kind"), [
    ("What brings you in today?", "open"),
    ("Tell me more about the physical side.", "open"),
    ("Could you tell me what happened?", "open"),
    ("How many times did it happen?", "closed"),
    ("Did you try that?", "closed"),
    ("What happened next, right?", "closed"),
    ("You felt let down, didn't you?", "closed"),
])
def test_open_and_closed_questions(sentence, kind):
    assert rules_mod.classify(sentence, None).question == kind


def test_statements_are_not_questions_and_restating_is_a_reflection():
    assert rules_mod.classify("How wonderful that was.", None).question == ""
    kind = rules_mod.classify("Your sister has been supportive since the promotion.",
                              "My sister has been supportive since my promotion.")
    assert kind == rules_mod.LineKind("", True)
    assert not rules_mod.classify("We can take our time.", "Nothing happened.").reflection


def test_the_figures_of_a_session(labelled):
    found = session_interventions(bench_review.reference("dialogue/sleep", SPEECH), "Clinician")
    assert isinstance(found, Interventions)
    assert found.clinician_lines == 7
    assert found.open_questions == (0.6, 12.56, 46.97)
    assert found.closed_questions == (33.13, 86.49)
    assert found.reflections == (12.56, 56.5)
    # Gaps 1.05, 8.81, 0.73, 0.63, 0.65, 0.85 s: the median of 0.73 and 0.85
    assert len(found.latencies_s) == 6
    assert found.latency_median_s == pytest.approx(0.79)
    assert found.latency_p90_s == pytest.approx(8.81)
    # The 18 s silence after "So part of you wants a real fix": the client broke it.
    long = [s for s in found.silences if s.duration_s > 15]
    assert [(s.before, s.broken_by, s.line_start) for s in long] == [("clinician", "client", 80.26)]
    assert found.share == pytest.approx(found.clinician_talk_s /
                                        (found.clinician_talk_s + found.client_talk_s))
    assert 0.4 < found.share < 0.6
    assert found.interruptions == () and found.overlaps == () and found.limits == ()


def test_interruptions_and_overlaps():
    found = session_interventions(_result(
        (0.0, 5.0, "Clinician", "How are you?"),
        (5.5, 12.0, "Client", "Not well, I keep waking up at night and"),
        (10.0, 13.0, "Clinician", "Did you sleep at all?"),     # starts 2 s before the client ends
        (12.8, 15.0, "Client", "A little."),                   # 0.2 s: boundary noise
        (15.5, 20.0, "Clinician", "Okay."),
        (18.0, 22.0, "Client", "But then"),                    # the client talks over
    ), "Clinician")
    assert isinstance(found, Interventions)
    assert found.interruptions == (10.0,)
    assert found.overlaps == (10.0, 18.0)
    assert found.latencies_s == (0.5,)


@pytest.mark.parametrize(("lines", "words"), [
    ([(0, 2, "Speaker 1", "Hello?"), (3, 5, "Speaker 1", "Hi.")], "The speakers are not labelled"),
    ([(0, 2, "Speaker 1", "Hello?"), (3, 5, "Speaker 2", "Hi.")], "The speakers are not labelled"),
    ([(0, 2, "Clinician", "Hello?"), (3, 5, "Clinician", "Anyone?")], NO_CLIENT),
    ([(0, 2, "Client", "Hello?"), (3, 5, "Speaker 2", "Hi.")], "No line of this transcript is yours"),
    ([], NO_LINES),
    ([(0, 2, "Unknown", "Hello?")], NO_LINES),
])
def test_bad_input_is_unavailable_with_the_reason(lines, words):
    found = session_interventions(_result(*lines), "Clinician")
    assert isinstance(found, Unavailable)
    assert found.reason.startswith(words)


def test_what_is_only_partly_counted_is_said():
    found = session_interventions(_result(
        (0, 2, "Clinician", "how are you"),
        (3, 5, "Unknown", "mm"),
        (6, 8, "Clinician", "did you sleep"),
        (9, 11, "Client", "no"),
    ), "Clinician")
    assert isinstance(found, Interventions)
    assert found.latency_median_s is None
    limits = " ".join(found.limits)
    assert "1 line had no speaker" in limits
    assert "no punctuation" in limits
    assert "Response time" in limits
    assert found.open_questions == (0,)  # "how …" counted without its "?"
