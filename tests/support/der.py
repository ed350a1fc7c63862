"""Diarization error rate (DER) and RTTM parsing, for tests and benchmarks (not shipped).

DER = (missed speech + false alarm + speaker confusion) / total reference speech,
the NIST md-eval definition:

- Scoring runs over elementary intervals between every reference and hypothesis
  boundary, so it is exact (no frame rounding).
- ``collar`` seconds either side of every reference turn boundary are not scored,
  because human boundary marks are only that precise.
- Overlapped reference speech counts once per speaker: a region where two people
  talk and the hypothesis names one is half missed.
- Reference and hypothesis speakers are paired one-to-one to maximise the time
  they agree: an optimal assignment (scipy's ``linear_sum_assignment``, the
  Hungarian method), exact for any number of speakers.

This is the definition of ``pyannote.metrics``' ``DiarizationErrorRate``, whose
``collar`` is the total width: our ``collar=0.25`` is its ``collar=0.5``.
:func:`pyannote_der` scores with pyannote itself (``tests/support/test_der.py``
checks the two agree on the shared references), so published figures compare.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from appliance.transcription.speakers import Turn


@dataclass(frozen=True)
class DerResult:
    """One DER score with its parts, all in seconds except ``der`` (a fraction)."""

    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float
    mapping: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return (
            f"DER {self.der:.2%} (missed {self.missed:.2f}s, false alarm "
            f"{self.false_alarm:.2f}s, confusion {self.confusion:.2f}s of {self.total:.2f}s)"
        )


def parse_rttm(path_or_text: str | os.PathLike) -> dict[str, list[Turn]]:
    """Read RTTM ``SPEAKER`` lines into turns per file id, sorted by start.

    A ``Path`` (or a string naming an existing file without line breaks) is read
    from disk; any other string is taken as RTTM text. Non-``SPEAKER`` lines and
    zero-length turns are skipped; a malformed ``SPEAKER`` line raises
    ``ValueError`` naming its line number.
    """
    text = _rttm_text(path_or_text)
    turns: dict[str, list[Turn]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ValueError(f"RTTM line {number}: expected at least 8 fields, got {len(fields)}")
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(f"RTTM line {number}: onset/duration are not numbers: {line!r}") from None
        if duration < 0:
            raise ValueError(f"RTTM line {number}: negative duration {duration}")
        if duration > 0:
            turns.setdefault(fields[1], []).append(Turn(start, start + duration, fields[7]))
    return {file_id: sorted(ts, key=lambda t: (t.start, t.end)) for file_id, ts in turns.items()}


def _rttm_text(path_or_text: str | os.PathLike) -> str:
    if isinstance(path_or_text, os.PathLike):
        return Path(path_or_text).read_text(encoding="utf-8")
    if "\n" not in path_or_text and os.path.isfile(path_or_text):
        return Path(path_or_text).read_text(encoding="utf-8")
    return path_or_text


def to_rttm(turns: Sequence[Turn], file_id: str) -> str:
    """Turns as RTTM ``SPEAKER`` lines; spaces in speaker names become underscores."""
    return "".join(
        f"SPEAKER {file_id} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> "
        f"{t.speaker.replace(' ', '_')} <NA> <NA>\n"
        for t in turns
    )


def der(
    reference: Sequence[Turn],
    hypothesis: Sequence[Turn],
    collar: float = 0.25,
    skip_overlap: bool = False,
) -> DerResult:
    """Score ``hypothesis`` against ``reference``; see the module docstring.

    ``skip_overlap`` leaves out regions where the reference has two or more
    speakers. With no scored reference speech the DER is 0 if the hypothesis is
    silent there too, else infinite.
    """
    if collar < 0:
        raise ValueError(f"collar must be >= 0 seconds, got {collar}")
    bounds, durations = _elementary_intervals(reference, hypothesis, collar)
    if len(durations) == 0:
        return DerResult(0.0, 0.0, 0.0, 0.0, 0.0)
    mids = (bounds[:-1] + bounds[1:]) / 2
    ref_names, ref_act = _activity(reference, mids)
    hyp_names, hyp_act = _activity(hypothesis, mids)
    weight = durations * _scored(reference, mids, collar)
    n_ref, n_hyp = ref_act.sum(axis=0), hyp_act.sum(axis=0)
    if skip_overlap:
        weight = weight * (n_ref <= 1)
    pairs = _best_mapping((ref_act * weight) @ hyp_act.T)
    # Each error is a count of speakers per interval (whole numbers, never negative)
    # weighted once: identical inputs give exactly 0, whatever order BLAS adds in.
    matched = np.zeros(len(durations))
    for r, h in pairs:
        matched += ref_act[r] * hyp_act[h]
    total = float(np.sum(weight * n_ref))
    missed = float(np.sum(weight * np.maximum(n_ref - n_hyp, 0)))
    false_alarm = float(np.sum(weight * np.maximum(n_hyp - n_ref, 0)))
    confusion = float(np.sum(weight * (np.minimum(n_ref, n_hyp) - matched)))
    errors = missed + false_alarm + confusion
    if total > 0:
        rate = errors / total
    elif errors == 0:
        rate = 0.0
    else:
        rate = float("inf")
    mapping = tuple((ref_names[r], hyp_names[h]) for r, h in pairs)
    return DerResult(rate, missed, false_alarm, confusion, total, mapping)


def pyannote_der(
    reference: Sequence[Turn],
    hypothesis: Sequence[Turn],
    collar_width: float,
    skip_overlap: bool = False,
) -> float:
    """DER by ``pyannote.metrics``; ``collar_width`` is pyannote's: the total (0.5 = ±0.25 s).

    The hypothesis's overlapping turns of one speaker are merged first
    (``Annotation.support``): pyannote counts every copy of a label active at
    once (a speaker overlapping themselves talks twice there and weighs twice in
    the speaker mapping), where :func:`der` takes a speaker as talking or not.
    The reference is passed as it is, since its turn boundaries place the
    collars (no shared reference has a speaker overlapping themselves).
    """
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns: Sequence[Turn]) -> Annotation:
        result = Annotation()
        for index, turn in enumerate(turns):
            result[Segment(turn.start, turn.end), index] = turn.speaker
        return result

    # Scored from 0 to the last turn: nothing is spoken outside, as in der().
    end = max([t.end for t in [*reference, *hypothesis]], default=1.0)
    metric = DiarizationErrorRate(collar=collar_width, skip_overlap=skip_overlap)
    scored = metric(annotation(reference), annotation(hypothesis).support(),
                    uem=Timeline([Segment(0.0, end)]))
    return float(scored)


def _elementary_intervals(reference, hypothesis, collar):
    """Every boundary (turns and collar edges) sorted; intervals between them."""
    points = [0.0]
    for t in reference:
        points += [t.start, t.end, t.start - collar, t.start + collar, t.end - collar, t.end + collar]
    for t in hypothesis:
        points += [t.start, t.end]
    bounds = np.unique(np.maximum(np.asarray(points, dtype=float), 0.0))
    durations = np.diff(bounds)
    return bounds, durations


def _activity(turns: Sequence[Turn], mids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Speaker names and a (speakers x intervals) 0/1 matrix of who talks when."""
    names = sorted({t.speaker for t in turns})
    act = np.zeros((len(names), len(mids)))
    index = {name: i for i, name in enumerate(names)}
    for t in turns:
        act[index[t.speaker]] = np.maximum(act[index[t.speaker]], (mids >= t.start) & (mids < t.end))
    return names, act


def _scored(reference: Sequence[Turn], mids: np.ndarray, collar: float) -> np.ndarray:
    """1 where an interval is outside every collar, else 0."""
    keep = np.ones(len(mids))
    if collar == 0:
        return keep
    for t in reference:
        for edge in (t.start, t.end):
            keep[(mids > edge - collar) & (mids < edge + collar)] = 0
    return keep


def _best_mapping(overlap: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (ref, hyp) maximising the summed overlap, one-to-one; pairs that never overlap are left out."""
    if overlap.size == 0:
        return []
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return [(int(r), int(h)) for r, h in zip(rows, cols, strict=True) if overlap[r, h] > 0]
