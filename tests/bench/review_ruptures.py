"""Moments to review: precision and recall of appliance/notes/ruptures.py on labelled dialogues.

The dialogues are tests/data/rupture_dialogues/*.json (written with known ruptures
and hard negatives) and the shared client series (week2's rupture, from facts.json).
A found moment is right when it starts at a labelled line; a found repair is right
when its moment is right and it starts at the labelled repair line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from appliance.notes import ruptures
from appliance.transcript import Segment, TranscriptResult
from tests.conftest import TESTDATA

DIALOGUES = Path(__file__).resolve().parents[1] / "data" / "rupture_dialogues"
SHARED = TESTDATA / "speech" / "dialogue"


@dataclass(frozen=True)
class Labelled:
    """One dialogue: its transcript, the labelled moments and whether the rules should match exactly."""

    name: str
    result: TranscriptResult
    moments: tuple[tuple[float, str, float | None], ...]  # (start, kind, repair start)
    exact: bool
    held_out: bool = False  # written after the rules were fixed, not tuned on


@dataclass(frozen=True)
class Score:
    """Counts over all dialogues, for moments and for repairs."""

    found: int
    right: int
    labelled: int
    repairs_found: int
    repairs_right: int
    repairs_labelled: int

    @staticmethod
    def ratio(part: int, whole: int) -> float:
        """``part / whole``, 1.0 when there is nothing to count."""
        return part / whole if whole else 1.0

    @property
    def precision(self) -> float:
        return self.ratio(self.right, self.found)

    @property
    def recall(self) -> float:
        return self.ratio(self.right, self.labelled)

    @property
    def repair_precision(self) -> float:
        return self.ratio(self.repairs_right, self.repairs_found)

    @property
    def repair_recall(self) -> float:
        return self.ratio(self.repairs_right, self.repairs_labelled)


def written() -> list[Labelled]:
    """The written dialogues, by name."""
    found = []
    for path in sorted(DIALOGUES.glob("*.json")):
        data = json.loads(path.read_text())
        labels = data.pop("labels")
        found.append(Labelled(path.stem, TranscriptResult.from_json(data),
                              tuple((m["start"], m["kind"], m["repair_start"])
                                    for m in labels["moments"]), labels["exact"],
                              labels.get("held_out", False)))
    return found


def series() -> list[Labelled]:
    """The shared series, labelled from facts.json (the line holding the quoted words)."""
    from tests.clients.series import FACTS, WEEKS, result

    found = []
    for week in WEEKS:
        res = result(week)
        moments = tuple(
            (_line(res, r["client_line_contains"]), "confrontation",
             _line(res, r["repair_line_contains"]))
            for r in FACTS["sessions"][week]["ruptures"])
        found.append(Labelled(f"series-{week}", res, moments, True))
    return found


def shared_dialogues() -> list[Labelled]:
    """The shared dialogues (../shared/testdata/speech/dialogue): no rupture in them."""
    found = []
    for path in sorted(SHARED.glob("*.txt")):
        rows = [line.split("\t") for line in path.read_text().splitlines() if line]
        segments = tuple(Segment(float(s), float(e), who.capitalize(), text)
                         for s, e, who, text in rows)
        found.append(Labelled(f"shared-{path.stem}", TranscriptResult(
            segments[-1].end, "reference", "en", segments), (), True))
    return found


def _line(result: TranscriptResult, words: str) -> float:
    return next(s.start for s in result.segments if words in s.text)


def score(dialogues: list[Labelled], clinician: str = "Clinician") -> Score:
    """Precision and recall counts of :func:`ruptures.candidates` over ``dialogues``."""
    counts = [0] * 6
    for d in dialogues:
        found = ruptures.candidates(d.result, clinician)
        labelled = {start: repair for start, _, repair in d.moments}
        right = [m for m in found if m.start in labelled]
        for i, n in enumerate((
                len(found), len(right), len(labelled),
                sum(m.repair_start is not None for m in found),
                sum(m.repair_start is not None and m.repair_start == labelled[m.start]
                    for m in right),
                sum(r is not None for r in labelled.values()))):
            counts[i] += n
    return Score(*counts)


def _print(title: str, found: Score) -> None:
    print(f"  {title}")
    print(f"    moments: {found.found} found, {found.right} right of {found.labelled} labelled: "
          f"precision {found.precision:.2f}, recall {found.recall:.2f}")
    print(f"    repairs: {found.repairs_found} found, {found.repairs_right} right of "
          f"{found.repairs_labelled} labelled: precision {found.repair_precision:.2f}, "
          f"recall {found.repair_recall:.2f}")


def ruptures_table() -> Score:
    """Print the precision and recall of moments and repairs; return the counts of all dialogues."""
    dialogues = written()
    tuned = [d for d in dialogues if not d.held_out] + series() + shared_dialogues()
    held_out = [d for d in dialogues if d.held_out]
    print("Moments to review (appliance/notes/ruptures.py)")
    _print(f"written with the rules: {len(dialogues) - len(held_out)} dialogues, the "
           "3-session series and the 2 shared dialogues", score(tuned))
    _print(f"held out: {len(held_out)} dialogues written after the rules were fixed",
           score(held_out))
    both = score(tuned + held_out)
    _print("all", both)
    return both


if __name__ == "__main__":
    ruptures_table()
