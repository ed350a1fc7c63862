"""The clinician's own review: how well the rules agree with hand-labelled lines.

Run as ``python -m tests.bench review`` (or ``make bench``). Two tables:

- "Your interventions" (:func:`interventions_table`): each clinician line of the
  shared dialogues' reference transcripts (../shared/testdata/speech, ``*.txt``)
  labelled by hand in tests/data/interventions_labels.tsv (open question, closed
  question, reflection, other), against what appliance/notes/interventions.py
  counts; precision and recall per label.
- "Moments to review" (``ruptures_table``, from tests/bench/review_ruptures.py):
  the rupture-and-repair candidates against the written dialogues' labels.

The loaders here are shared with tests/notes/test_interventions.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.notes.interventions import Interventions, session_interventions
from appliance.transcript import Segment, Silence, TranscriptResult
from tests.bench.review_ruptures import ruptures_table

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "testdata" / "speech"
LABELS = ROOT / "tests" / "data" / "interventions_labels.tsv"
KINDS = ("open", "closed", "reflection", "other")
# The reference transcripts carry no silences: gaps this long between lines stand in
# for the pipeline's (its threshold is a setting; 10 s by default).
SILENCE_S = 5.0


@dataclass(frozen=True)
class Score:
    """Agreement on one label: lines both say, only the rules say, only the hand says."""

    label: str
    both: int
    rules_only: int
    hand_only: int

    @property
    def precision(self) -> float:
        """Of the lines the rules gave this label, the share the hand gave it too."""
        said = self.both + self.rules_only
        return self.both / said if said else 1.0

    @property
    def recall(self) -> float:
        """Of the lines labelled so by hand, the share the rules found."""
        labelled = self.both + self.hand_only
        return self.both / labelled if labelled else 1.0


def load_labels(path: Path = LABELS) -> dict[tuple[str, float], frozenset[str]]:
    """(transcript, line start) -> the hand labels of that clinician line."""
    labels = {}
    rows = [r for r in path.read_text("utf-8").splitlines() if r and not r.startswith("#")]
    for row in rows[1:]:
        name, start, kinds = row.split("\t")[:3]
        labels[(name, float(start))] = frozenset(kinds.split(","))
    return labels


def reference(name: str, speech: Path = SPEECH) -> TranscriptResult:
    """A reference transcript (``name`` like "series/week1") as a labelled TranscriptResult."""
    segments = []
    for row in (speech / f"{name}.txt").read_text("utf-8").splitlines():
        start, end, speaker, text = row.split("\t")
        segments.append(Segment(float(start), float(end), speaker.capitalize(), text))
    silences = tuple(Silence(a.end, b.start) for a, b in zip(segments, segments[1:], strict=False)
                     if b.start - a.end >= SILENCE_S)
    return TranscriptResult(duration_s=segments[-1].end + 1, model="reference", language="en",
                            segments=tuple(segments), silences=silences)


def predicted(found: Interventions) -> dict[float, frozenset[str]]:
    """Line start -> the labels the rules gave each clinician line with any."""
    by_line: dict[float, set[str]] = {}
    for kind, starts in (("open", found.open_questions), ("closed", found.closed_questions),
                         ("reflection", found.reflections)):
        for start in starts:
            by_line.setdefault(start, set()).add(kind)
    return {start: frozenset(kinds) for start, kinds in by_line.items()}


def compare(labels: dict[tuple[str, float], frozenset[str]],
            speech: Path = SPEECH) -> dict[tuple[str, float], frozenset[str]]:
    """(transcript, line start) -> the rules' labels, for every hand-labelled line."""
    out = {}
    for name in sorted({name for name, _ in labels}):
        found = session_interventions(reference(name, speech), "Clinician")
        assert isinstance(found, Interventions), found
        said = predicted(found)
        for key in (k for k in labels if k[0] == name):
            out[key] = said.get(key[1], frozenset({"other"}))
    return out


def scores(labels: dict, said: dict) -> dict[str, Score]:
    """Per label, how the rules agree with the hand labels."""
    def count(kind: str) -> Score:
        hand = {k for k, v in labels.items() if kind in v}
        rules = {k for k, v in said.items() if kind in v}
        return Score(kind, len(hand & rules), len(rules - hand), len(hand - rules))
    return {kind: count(kind) for kind in KINDS}


def _rows(table: Iterable[Score]) -> None:
    print(f"{'label':<12}{'lines':>7}{'found':>7}{'wrong':>7}{'precision':>11}{'recall':>8}")
    for s in table:
        print(f"{s.label:<12}{s.both + s.hand_only:>7}{s.both:>7}{s.rules_only:>7}"
              f"{s.precision:>11.2f}{s.recall:>8.2f}")


def interventions_table() -> None:
    """Print precision and recall per label of the interventions rules."""
    labels = load_labels()
    said = compare(labels)
    print(f"Your interventions: {len(labels)} hand-labelled clinician lines, 5 dialogues")
    _rows(scores(labels, said).values())
    for key in sorted(k for k in labels if said[k] != labels[k]):
        print(f"  disagree {key[0]} {key[1]:>6}: hand {','.join(sorted(labels[key]))}, "
              f"rules {','.join(sorted(said[key]))}")


def main() -> None:
    if not SPEECH.is_dir():
        print(f"skipped: no shared test data at {SPEECH}")
        return
    interventions_table()
    print()
    ruptures_table()


if __name__ == "__main__":
    main()
