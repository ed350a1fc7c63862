"""Draft quality for ``bench drafting``: facts covered, statements dropped, citations that hit.

Definitions (the bench prints them too):

- a model statement is a statement the model wrote (not a risk-screen flag, which the
  note carries verbatim); it is *verified* when the grounding check kept it in the
  note's text, *marked* when kept beside the text with a reason, *dropped* when the
  check threw it away (no valid citation, a fragment or a repeat);
- a reference fact (``series/facts.json``) is *covered* when a verified model
  statement contains one of its ``any`` keywords (case-insensitive, as a substring,
  so "faint" matches "fainting");
- the *key words* of a statement are its words of 4 or more letters that are not
  stop words; a citation *hits* when the line it points at (the line starting at that
  time) shares at least one key word with the statement (whole words, lower case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.drafting.note import RISK_SOURCE

_STOP_TEXT = """
about above after again against also been before being below between both but came come
could does doing done down during each even ever every from further have having here hers
herself himself into itself just like make many more most much must myself never only other
ought ours ourselves over said same says session shall should some such than that their
theirs them themselves then there these they this those through until upon very want were
what when where which while whom with would your yours yourself yourselves client clients
clinician therapist reported reports discussed talked mentioned stated described shared
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> set[str]:
    """Lower-case words of ``text``."""
    return set(_WORD.findall(text.lower().replace("’", "'")))


def key_words(text: str) -> set[str]:
    """Words of 4+ letters that are not stop words."""
    return {w for w in words(text) if len(w) >= 4 and w not in STOP_WORDS}


def model_statements(note: dict) -> list[dict]:
    """Every statement the model wrote in the note's drafted sections (risk flags left out)."""
    return [s for section in note.get("sections", []) if section.get("drafted")
            for s in section.get("statements", []) if s.get("source") != RISK_SOURCE]


@dataclass
class Quality:
    """Counts summed over notes."""

    verified: int = 0
    marked: int = 0
    dropped: int = 0
    citations: int = 0
    hits: int = 0
    facts: int = 0
    covered: int = 0
    missed: list[str] = field(default_factory=list)

    def add_note(self, note: dict, lines: Iterable, dropped: int) -> None:
        """Count one drafted note against its transcript lines."""
        by_start = {float(line.start): line.text for line in lines}
        self.dropped += dropped
        for statement in model_statements(note):
            if not statement.get("verified"):
                self.marked += 1
                continue
            self.verified += 1
            keys = key_words(statement["text"])
            for cited in statement.get("citations", []):
                self.citations += 1
                self.hits += bool(keys & words(by_start.get(float(cited), "")))

    def add_facts(self, note: dict, reference: list[dict], session: str) -> None:
        """Count the reference facts a verified model statement covers."""
        texts = [s["text"].lower() for s in model_statements(note) if s.get("verified")]
        for fact in reference:
            self.facts += 1
            if any(k.lower() in text for k in fact["any"] for text in texts):
                self.covered += 1
            else:
                self.missed.append(f"{session}: {fact['fact']}")

    @property
    def proposed(self) -> int:
        """Statements the model proposed: kept, marked or dropped."""
        return self.verified + self.marked + self.dropped


def series_facts(path: Path) -> dict[str, list[dict]]:
    """The reference facts of each session of the series."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: session["facts"] for name, session in data["sessions"].items()}


def share(part: int, whole: int) -> str:
    """``part/whole = NN%`` (or ``0/0``)."""
    return f"{part}/{whole} = {part / whole:.0%}" if whole else f"{part}/0"
