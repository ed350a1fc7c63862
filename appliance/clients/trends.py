"""Talk figures of a client's sessions over time: the numbers the client page charts.

Per session (oldest first): the client's share of talk, silences, turns, the
client's words per minute, risk flags and bookmarks. The figures come from
the session's own metrics (:mod:`appliance.notes.facts`), so the client page
and the session page never disagree. The client-only figures are None when
the client's lines cannot be told apart (:func:`appliance.clients.lines.identify`);
they are never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from appliance.clients.lines import Prepared
from appliance.notes import facts
from appliance.transcript import Metrics, TranscriptResult


@dataclass(frozen=True)
class TrendPoint:
    """One session's figures.

    ``client_share`` is a fraction (0 to 1) of all talk time; ``client_wpm`` the
    client's words over the client's speaking minutes. Both are None when the
    client cannot be told apart; ``unknown_reason`` then says why. ``flags``
    counts the session's risk flags (a flag a correction took away is not counted).
    """

    session_id: int
    when: date
    duration_s: float
    client: str | None
    client_share: float | None
    client_wpm: float | None
    client_words: int | None
    silence_count: int
    silence_total_s: float
    turns: int
    flags: int
    flag_categories: tuple[str, ...]
    bookmarks: int
    unknown_reason: str = ""


@dataclass(frozen=True)
class TrendSeries:
    """A client's sessions' figures, oldest first."""

    points: tuple[TrendPoint, ...]

    @property
    def client_known(self) -> tuple[TrendPoint, ...]:
        """The sessions whose client-only figures could be worked out."""
        return tuple(p for p in self.points if p.client is not None)

    @property
    def unknown(self) -> tuple[TrendPoint, ...]:
        """The sessions whose client could not be told apart (each says why)."""
        return tuple(p for p in self.points if p.client is None)


def _metrics(result: TranscriptResult) -> Metrics:
    """The stored metrics, or (for an old result without them) the same figures computed now."""
    if result.metrics is not None:
        return result.metrics
    return facts.compute_metrics(result.segments, result.duration_s, result.silences)


def point(prepared: Prepared) -> TrendPoint:
    """The figures of one prepared session."""
    session, client = prepared.session, prepared.who.client
    result = session.result
    metrics = _metrics(result)
    flags = [flag for flag in result.flags if not flag.removed]
    known = client is not None and client in metrics.talk_time_s
    name = client if known and client is not None else ""
    return TrendPoint(
        session_id=session.session_id, when=session.when,
        duration_s=result.duration_s or metrics.duration_s,
        client=name or None,
        client_share=round(metrics.talk_share.get(name, 0.0), 4) if name else None,
        client_wpm=metrics.words_per_minute.get(name) if name else None,
        client_words=metrics.words.get(name) if name else None,
        silence_count=metrics.silence_count or len(result.silences),
        silence_total_s=metrics.silence_total_s or round(sum(s.duration for s in result.silences), 2),
        turns=metrics.turns,
        flags=len(flags),
        flag_categories=tuple(sorted({flag.category for flag in flags})),
        bookmarks=len(result.bookmarks),
        unknown_reason="" if name else (prepared.who.reason or "No line of the client's."))


def series(prepared: Iterable[Prepared]) -> TrendSeries:
    """Every session's figures, in the order given (``prepare`` gives oldest first)."""
    return TrendSeries(tuple(point(p) for p in prepared))
