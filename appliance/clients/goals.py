"""A client's treatment goals against their sessions: what each session said about each goal.

A goal's key words are its content words, folded as the themes fold them
(:func:`appliance.clients.themes.keys_of`); a line says something about the
goal when it shares a key word with it. Lines sharing more key words come
first. A goal with no content word ("be OK") has nothing to look for, and
says so rather than matching everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from appliance.clients.lines import Prepared
from appliance.clients.themes import Mention, fold, keys_of, mention

PER_SESSION = 3
NO_KEY_WORDS = "This goal has no word specific enough to look for in the transcripts."


@dataclass(frozen=True)
class GoalSession:
    """One session's lines about a goal (empty when it said nothing about it)."""

    session_id: int
    when: date
    mentions: tuple[Mention, ...]


@dataclass(frozen=True)
class GoalTrack:
    """A treatment goal, the words looked for, and each session's lines about it."""

    goal: str
    key_words: tuple[str, ...]
    sessions: tuple[GoalSession, ...]
    note: str = ""

    @property
    def mentioned_in(self) -> int:
        """How many sessions said something about the goal."""
        return sum(1 for s in self.sessions if s.mentions)


def track(goal: str, prepared: Sequence[Prepared]) -> GoalTrack:
    """What each session (oldest first) said about ``goal``."""
    keys = keys_of(goal)
    if not keys:
        return GoalTrack(goal, (), (), NO_KEY_WORDS)
    sessions = tuple(GoalSession(p.session.session_id, p.session.when,
                                 tuple(mention(p, i) for i in _lines(p, set(keys))))
                     for p in prepared)
    return GoalTrack(goal, tuple(keys.values()), sessions)


def _lines(prepared: Prepared, wanted: set[str]) -> list[int]:
    """The :data:`PER_SESSION` lines sharing most key words with the goal, in time order."""
    # The session's words that fold to a key word: a handful, found among its distinct words.
    forms = {word: fold(word) for word in prepared.vocabulary if fold(word) in wanted}
    if not forms:
        return []
    shared = [(len({forms[w] for w in line if w in forms}), index)
              for index, line in enumerate(prepared.words) if not forms.keys().isdisjoint(line)]
    best = sorted(shared, key=lambda hit: (-hit[0], hit[1]))[:PER_SESSION]
    return sorted(index for _, index in best)


def tracks(goals: Iterable[str], prepared: Sequence[Prepared]) -> tuple[GoalTrack, ...]:
    """Every goal's track, in the order the goals are given."""
    return tuple(track(goal, prepared) for goal in goals)
