"""Language cues over a client's sessions: absolutist words, "I", negative-emotion words.

Each cue is a word list in ``language_cues.toml`` (shipped with the package,
reviewable), counted in the client's lines only, as a rate per 100 of the
client's words, per session. The page shows them as cues with their
explanation and source, never as a measure of anything. A session whose
client cannot be told apart has no rates (never a guess).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from appliance.clients.lines import Prepared

CUES_FILE = "language_cues.toml"
NO_WORDS = "The client said no words in this session."


@dataclass(frozen=True)
class Cue:
    """One word list: what it counts, what a change may mean, and where that comes from."""

    key: str
    name: str
    explanation: str
    source: str
    words: frozenset[str]


@dataclass(frozen=True)
class CueRate:
    """One cue in one session: how many of the client's words matched, per 100 words."""

    key: str
    count: int
    rate: float | None


@dataclass(frozen=True)
class LanguagePoint:
    """One session's cues. ``client_words`` and every rate are None when the client is unknown."""

    session_id: int
    when: date
    client_words: int | None
    rates: tuple[CueRate, ...]
    unknown_reason: str = ""

    def rate(self, key: str) -> float | None:
        """The rate per 100 client words of cue ``key`` (None when it cannot be told)."""
        return next((r.rate for r in self.rates if r.key == key), None)


@dataclass(frozen=True)
class LanguageSeries:
    """The cues and each session's rates, oldest first."""

    cues: tuple[Cue, ...]
    points: tuple[LanguagePoint, ...]


def parse_cues(text: str, where: str = CUES_FILE) -> tuple[Cue, ...]:
    """The cues of a cue file's text; ValueError naming the file and the entry when malformed."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{where} is not valid TOML: {error}") from None
    cues = []
    for number, entry in enumerate(data.get("cue", ()), start=1):
        missing = [k for k in ("key", "name", "explanation", "source", "words") if not entry.get(k)]
        if missing:
            raise ValueError(f"{where}: cue {number} lacks {', '.join(missing)}")
        cues.append(Cue(entry["key"], entry["name"], entry["explanation"], entry["source"],
                        frozenset(str(w).lower().replace("’", "'") for w in entry["words"])))
    if not cues:
        raise ValueError(f"{where} holds no [[cue]] entries")
    return tuple(cues)


@cache
def shipped_cues() -> tuple[Cue, ...]:
    """The cues shipped with Holdnote (appliance/clients/language_cues.toml)."""
    text = resources.files("appliance.clients").joinpath(CUES_FILE).read_text(encoding="utf-8")
    return parse_cues(text)


def point(prepared: Prepared, cues: Iterable[Cue]) -> LanguagePoint:
    """The cue rates of one prepared session."""
    session = prepared.session
    if prepared.who.client is None:
        return LanguagePoint(session.session_id, session.when, None,
                             tuple(CueRate(c.key, 0, None) for c in cues), prepared.who.reason)
    counts = prepared.client_counts
    total = sum(counts.values())
    return LanguagePoint(session.session_id, session.when, total,
                         tuple(_rate(cue, counts, total) for cue in cues),
                         "" if total else NO_WORDS)


def _rate(cue: Cue, counts: Mapping[str, int], total: int) -> CueRate:
    matched = sum(counts.get(word, 0) for word in cue.words)
    return CueRate(cue.key, matched, round(100.0 * matched / total, 2) if total else None)


def series(prepared: Iterable[Prepared], cues: Iterable[Cue] | None = None) -> LanguageSeries:
    """Every session's cue rates, in the order given (oldest first from ``prepare``)."""
    chosen = tuple(cues) if cues is not None else shipped_cues()
    return LanguageSeries(chosen, tuple(point(p, chosen) for p in prepared))
