"""The shared client series (three weekly sessions of one client) as transcript results.

Built from the reference lines and turns in ``testdata/speech/series`` with the
real session facts (silences, metrics, risk flags), as the pipeline makes them;
speaker names capitalised as the stereo pipeline writes them ("Clinician", "Client").
"""

from __future__ import annotations

import json
from datetime import date

from appliance.clients.lines import SessionText
from appliance.notes import facts, risk
from appliance.transcript import Segment, TranscriptResult
from tests.conftest import TESTDATA

SERIES = TESTDATA / "speech" / "series"
WEEKS = ("week1", "week2", "week3")
FACTS = json.loads((SERIES / "facts.json").read_text())


def segments(week: str, rename: dict[str, str] | None = None) -> list[Segment]:
    """The reference lines of ``week``, speakers capitalised (or renamed by ``rename``)."""
    rows = (line.split("\t") for line in (SERIES / f"{week}.txt").read_text().splitlines() if line)
    names = rename or {}
    return [Segment(float(s), float(e), names.get(who, who.capitalize()), text)
            for s, e, who, text in rows]


def result(week: str, rename: dict[str, str] | None = None) -> TranscriptResult:
    """The transcript result of ``week`` as the pipeline makes it."""
    segs = segments(week, rename)
    duration = json.loads((SERIES / f"{week}.json").read_text())["duration_s"]
    silences = facts.find_silences(segs, duration, 2.0)
    return TranscriptResult(duration, "reference", "en", tuple(segs), silences=tuple(silences),
                            metrics=facts.compute_metrics(segs, duration, silences),
                            flags=tuple(risk.find_risk_flags(segs)))


def sessions(rename: dict[str, str] | None = None) -> list[SessionText]:
    """The three sessions, ids 1 to 3, dated as in facts.json."""
    return [SessionText(number, date.fromisoformat(FACTS["sessions"][week]["date"]),
                        result(week, rename))
            for number, week in enumerate(WEEKS, start=1)]
