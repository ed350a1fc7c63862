"""Diarization error rate and RTTM parsing (tests/support/der.py), on hand-made cases."""

from __future__ import annotations

import math

import pytest

from appliance.transcription.speakers import Turn
from tests.support.der import der, parse_rttm, pyannote_der, to_rttm

REFERENCE = [Turn(0.0, 10.0, "A"), Turn(10.0, 20.0, "B")]


def test_perfect_hypothesis_scores_zero():
    result = der(REFERENCE, REFERENCE)
    assert result.der == 0.0
    assert result.missed == result.false_alarm == result.confusion == 0.0


def test_empty_hypothesis_misses_everything():
    result = der(REFERENCE, [])
    assert result.der == pytest.approx(1.0)
    assert result.missed == pytest.approx(result.total)


def test_swapped_labels_are_mapped_not_counted():
    swapped = [Turn(0.0, 10.0, "speaker 2"), Turn(10.0, 20.0, "speaker 1")]
    result = der(REFERENCE, swapped)
    assert result.der == 0.0
    assert dict(result.mapping) == {"A": "speaker 2", "B": "speaker 1"}


def test_known_confusion_fraction_without_collar():
    # B's first half is labelled X, which the mapping already gave to A.
    hypothesis = [Turn(0.0, 15.0, "X"), Turn(15.0, 20.0, "Y")]
    result = der(REFERENCE, hypothesis, collar=0.0)
    assert result.confusion == pytest.approx(5.0)
    assert result.der == pytest.approx(0.25)


def test_collar_removes_boundary_regions_from_scoring():
    hypothesis = [Turn(0.0, 15.0, "X"), Turn(15.0, 20.0, "Y")]
    result = der(REFERENCE, hypothesis, collar=0.25)
    # Scored: 20 s minus 0.25 at 0 and 20 and 0.5 around 10 = 19 s; 10.25..15 confused.
    assert result.total == pytest.approx(19.0)
    assert result.confusion == pytest.approx(4.75)
    assert result.der == pytest.approx(0.25)


def test_boundary_jitter_within_the_collar_is_free():
    late = [Turn(0.2, 10.2, "A"), Turn(10.2, 19.8, "B")]
    assert der(REFERENCE, late, collar=0.25).der == pytest.approx(0.0)
    assert der(REFERENCE, late, collar=0.0).der > 0


def test_false_alarm_can_push_der_above_one():
    reference = [Turn(0.0, 1.0, "A")]
    hypothesis = [Turn(0.0, 1.0, "A"), Turn(2.0, 5.0, "A")]
    result = der(reference, hypothesis, collar=0.0)
    assert result.false_alarm == pytest.approx(3.0)
    assert result.der == pytest.approx(3.0)


def test_overlapped_reference_counts_each_speaker():
    reference = [Turn(0.0, 10.0, "A"), Turn(0.0, 10.0, "B")]
    result = der(reference, [Turn(0.0, 10.0, "x")], collar=0.0)
    assert result.total == pytest.approx(20.0)
    assert result.missed == pytest.approx(10.0)
    assert result.der == pytest.approx(0.5)
    assert der(reference, [Turn(0.0, 10.0, "x")], collar=0.0, skip_overlap=True).total == 0.0


def test_extra_hypothesis_speaker_is_confusion():
    hypothesis = [Turn(0.0, 10.0, "x"), Turn(10.0, 15.0, "y"), Turn(15.0, 20.0, "z")]
    result = der(REFERENCE, hypothesis, collar=0.0)
    assert result.confusion == pytest.approx(5.0)


def test_many_speakers_are_mapped_correctly():
    reference = [Turn(float(i), i + 1.0, f"r{i}") for i in range(10)]
    hypothesis = [Turn(float(i), i + 1.0, f"h{9 - i}") for i in range(10)]
    assert der(reference, hypothesis, collar=0.0).der == pytest.approx(0.0)


def test_many_speakers_get_the_optimal_mapping_not_a_greedy_one():
    # "a" overlaps "x" most (3 s), but giving "x" to "b" and "y" to "a" agrees 4 s
    # in all, not 3: confusion is the 3 s of "a" labelled "x". Eight more speakers
    # make sure no small-case shortcut applies.
    reference = [Turn(0.0, 5.0, "a"), Turn(5.0, 7.0, "b")]
    hypothesis = [Turn(0.0, 3.0, "x"), Turn(3.0, 5.0, "y"), Turn(5.0, 7.0, "x")]
    for i in range(8):
        reference.append(Turn(10.0 + i, 11.0 + i, f"r{i}"))
        hypothesis.append(Turn(10.0 + i, 11.0 + i, f"h{i}"))
    result = der(reference, hypothesis, collar=0.0)
    assert result.confusion == pytest.approx(3.0)
    assert {("a", "y"), ("b", "x")} <= set(result.mapping)


def test_nothing_to_score():
    assert der([], []).der == 0.0
    assert math.isinf(der([], [Turn(0.0, 1.0, "x")]).der)


def test_negative_collar_is_rejected():
    with pytest.raises(ValueError, match="collar"):
        der(REFERENCE, REFERENCE, collar=-1)


RTTM = """\
SPKR-INFO meeting 1 <NA> <NA> <NA> unknown A <NA> <NA>
SPEAKER meeting 1 3.000 2.000 <NA> <NA> B <NA> <NA>
SPEAKER meeting 1 0.500 1.500 <NA> <NA> A <NA> <NA>
SPEAKER meeting 1 9.000 0.000 <NA> <NA> A <NA> <NA>
SPEAKER other 1 1.000 1.000 <NA> <NA> C <NA> <NA>
"""


def test_parse_rttm_text_groups_by_file_and_sorts():
    turns = parse_rttm(RTTM)
    assert set(turns) == {"meeting", "other"}
    assert turns["meeting"] == [Turn(0.5, 2.0, "A"), Turn(3.0, 5.0, "B")]  # zero-length dropped
    assert turns["other"] == [Turn(1.0, 2.0, "C")]


def test_parse_rttm_reads_a_path_and_round_trips(tmp_path):
    path = tmp_path / "x.rttm"
    path.write_text(to_rttm([Turn(1.0, 2.5, "Speaker 1")], "x"))
    assert parse_rttm(path) == {"x": [Turn(1.0, 2.5, "Speaker_1")]}
    assert parse_rttm(str(path)) == parse_rttm(path)


def test_parse_rttm_names_the_bad_line():
    with pytest.raises(ValueError, match="line 2"):
        parse_rttm("SPEAKER f 1 0 1 <NA> <NA> A <NA> <NA>\nSPEAKER f 1 zero 1 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_rttm("SPEAKER f 1 0\n")


def test_reference_dialogue_parses(testdata):
    turns = parse_rttm(testdata / "speech" / "dialogue" / "sleep.rttm")["sleep"]
    assert len(turns) == 13
    assert {t.speaker for t in turns} == {"clinician", "client"}
    assert der(turns, turns).der == 0.0


# --- agreement with pyannote.metrics, the scorer published figures use ----------------------


def _relabelled(turns: list[Turn]) -> list[Turn]:
    """Every third turn given to the next speaker (by name), the rest kept."""
    names = sorted({t.speaker for t in turns})
    other = {name: names[(i + 1) % len(names)] for i, name in enumerate(names)}
    return [Turn(t.start, t.end, other[t.speaker] if i % 3 == 0 else t.speaker)
            for i, t in enumerate(turns)]


def _dropped_and_invented(turns: list[Turn]) -> list[Turn]:
    """Every fourth turn missed, and a second of speech invented after each fifth."""
    kept = [t for i, t in enumerate(turns) if i % 4 != 1]
    invented = [Turn(t.end + 0.5, t.end + 1.5, "invented") for t in turns[::5]]
    return kept + invented


def _split(turns: list[Turn]) -> list[Turn]:
    """Each turn's second half given to a speaker of its own."""
    halves = []
    for t in turns:
        middle = (t.start + t.end) / 2
        halves += [Turn(t.start, middle, t.speaker), Turn(middle, t.end, f"{t.speaker}-b")]
    return halves


HYPOTHESES = {
    "late 0.1 s (inside the collar)": lambda ts: [Turn(t.start + 0.1, t.end + 0.1, t.speaker) for t in ts],
    "late 0.4 s": lambda ts: [Turn(t.start + 0.4, t.end + 0.4, t.speaker) for t in ts],
    "every third turn mislabelled": _relabelled,
    "turns missed and speech invented": _dropped_and_invented,
    "everyone one speaker": lambda ts: [Turn(t.start, t.end, "all") for t in ts],
    "second halves a new speaker": _split,
}


def _shared_references(testdata) -> dict[str, list[Turn]]:
    speech = testdata / "speech"
    found = {}
    for path in [*sorted((speech / "series").glob("*.rttm")), *sorted((speech / "dialogue").glob("*.rttm")),
                 speech / "ami_debug" / "development.rttm", speech / "ami_debug" / "train.rttm"]:
        found.update(parse_rttm(path))
    return found


@pytest.mark.parametrize("name", list(HYPOTHESES))
def test_der_agrees_with_pyannote_metrics_on_the_shared_references(testdata, name):
    references = _shared_references(testdata)
    assert len(references) >= 12  # series, dialogues and the AMI clips (some with overlap)
    for file_id, reference in references.items():
        hypothesis = HYPOTHESES[name](reference)
        # pyannote's collar is the total width: 0.5 there is our 0.25 either side.
        for ours, theirs in ((0.25, 0.5), (0.0, 0.0)):
            expected = pyannote_der(reference, hypothesis, theirs)
            got = der(reference, hypothesis, collar=ours).der
            assert got == pytest.approx(expected, abs=1e-6), (file_id, ours)
