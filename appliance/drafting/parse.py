"""The model's answer as statements, each with the times it cites.

The answer is read line by line: a statement is a line of words ending in one or
more bracketed times (``[1:05]``, ``[1:05, 2:10]``, ``[0:01:05]``). Bullets,
numbering and stray spacing are tolerated; a repeated statement counts once;
"Not discussed" is recognised. A time is resolved to the transcript lines that
start at that second (:func:`resolve`); what cannot be resolved is left to the
verifier to drop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.notes import times
from appliance.notes.facts import Line

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?"
_CITES = re.compile(rf"[\[(]\s*((?:{_TIME})(?:\s*[,;]\s*(?:{_TIME}))*)\s*[\])]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
NOT_DISCUSSED = re.compile(r"^\W*not discussed\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class Raw:
    """One statement as the model wrote it: its words and the clock times it cites."""

    text: str
    cited: tuple[str, ...]


def statements(answer: str) -> tuple[list[Raw], bool]:
    """The statements in ``answer``, and whether the model said "Not discussed"."""
    found: list[Raw] = []
    seen: set[str] = set()
    said_none = False
    for raw_line in answer.splitlines():
        line = _BULLET.sub("", raw_line).strip()
        if not line:
            continue
        cited = tuple(t.strip() for match in _CITES.finditer(line) for t in re.split(r"[,;]", match[1]))
        text = _CITES.sub("", line).strip().rstrip(" ,;")
        if NOT_DISCUSSED.match(text):
            said_none = True
            continue
        key = re.sub(r"\W+", " ", text.lower()).strip()
        if key and key not in seen:
            seen.add(key)
            found.append(Raw(text, cited))
    return found, said_none


def resolve(cited: Sequence[str], lines: Sequence[Line]) -> list[Line]:
    """The transcript lines starting at the cited clock times, in time order, each once."""
    wanted = {_canonical(c) for c in cited}
    return [line for line in lines if times.clock(line.start) in wanted]


def _canonical(clock: str) -> str:
    """``01:05`` and ``0:01:05`` as the transcript writes them (``1:05``)."""
    parts = [int(p) for p in clock.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    return times.clock(seconds)
