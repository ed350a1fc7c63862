"""Recurring themes across a client's sessions: words and word pairs that come back.

A theme is a content word (or two content words said together, "team
meeting") that is said in at least two of the client's sessions. Words are
folded by their endings ("stairs"/"stair", "presented"/"present") so one
theme gathers its forms; stop words (``stop_words.txt``, reviewable) are
never themes. Both speakers' lines count, since a theme is what the sessions
talk about (a client often answers "it" to the clinician's "the log"); the
client's own mentions rank a theme higher. Each theme keeps the lines it is
said on, for links to the moment in the session.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from itertools import pairwise

from appliance.clients.lines import Prepared, words_of
from appliance.notes.words import fold

MIN_SESSIONS = 2
LIMIT = 30
PER_SESSION = 1  # lines kept per theme and session: its first (the count covers them all)
_MIN_LETTERS = 3


@dataclass(frozen=True)
class Mention:
    """A line where a theme (or a goal's key word) is said."""

    session_id: int
    when: date
    line: int  # index in the session's TranscriptResult.segments
    start: float
    speaker: str
    by_client: bool
    text: str


@dataclass(frozen=True)
class Theme:
    """A recurring theme: its label (the form said most), every form, and where it is said."""

    label: str
    forms: tuple[str, ...]
    sessions: tuple[int, ...]
    count: int
    client_count: int
    mentions: tuple[Mention, ...]

    @property
    def spread(self) -> int:
        """In how many sessions it is said."""
        return len(self.sessions)


@cache
def stop_words() -> frozenset[str]:
    """The stop words shipped with Holdnote (appliance/clients/stop_words.txt)."""
    text = resources.files("appliance.clients").joinpath("stop_words.txt").read_text("utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def is_content(word: str, stop: frozenset[str]) -> bool:
    """Whether ``word`` can be (part of) a theme: not a stop word, a number or too short."""
    return len(word) >= _MIN_LETTERS and word not in stop and not word[0].isdigit()


def mention(prepared: Prepared, index: int) -> Mention:
    """The line ``index`` of a prepared session as a mention."""
    session = prepared.session
    segment = session.result.segments[index]
    return Mention(session.session_id, session.when, index, segment.start, segment.speaker,
                   segment.speaker == prepared.who.client, segment.text)


class _Tally:
    """Every key over the sessions: where it is said, how often, by the client, in which forms.

    Works from each session's word and word-pair counts (counted once, in C), so
    its Python loops run over the distinct words of a session, not every word said.
    """

    def __init__(self) -> None:
        self.sessions: dict[str, list[int]] = defaultdict(list)
        self.count: Counter[str] = Counter()
        self.client: Counter[str] = Counter()
        self.forms: dict[str, Counter[str]] = defaultdict(Counter)
        self.pair_forms: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def add(self, position: int, prepared: Prepared, stop: frozenset[str]) -> None:
        client, other = prepared.client_counts, prepared.other_counts
        content = {w for w in prepared.vocabulary if is_content(w, stop)}
        seen: set[str] = set()
        for word in content:
            self._count(fold(word), word, client[word] + other[word], client[word], seen)
        client_pairs, other_pairs = prepared.client_pairs, prepared.other_pairs
        for a, b in client_pairs.keys() | other_pairs.keys():
            if a in content and b in content:
                key = f"{fold(a)} {fold(b)}"
                self.pair_forms[key].add((a, b))
                by_client = client_pairs[a, b]
                self._count(key, f"{a} {b}", by_client + other_pairs[a, b], by_client, seen)
        for key in seen:
            self.sessions[key].append(position)

    def _count(self, key: str, form: str, n: int, by_client: int, seen: set[str]) -> None:
        self.count[key] += n
        self.client[key] += by_client
        self.forms[key][form] += n
        seen.add(key)


def themes(prepared: Sequence[Prepared], limit: int | None = LIMIT) -> tuple[Theme, ...]:
    """The recurring themes, most widespread first (then said most by the client, then most).

    ``limit`` None gives every key said in :data:`MIN_SESSIONS` sessions or more.
    """
    stop = stop_words()
    tally = _Tally()
    for position, p in enumerate(prepared):
        tally.add(position, p, stop)
    recurring = [k for k, found in tally.sessions.items() if len(found) >= MIN_SESSIONS]
    recurring.sort(key=lambda k: (-len(tally.sessions[k]), -tally.client[k], -tally.count[k], k))
    chosen = recurring if limit is None else recurring[:limit]
    return tuple(_theme(key, tally, prepared) for key in chosen)


def _theme(key: str, tally: _Tally, prepared: Sequence[Prepared]) -> Theme:
    forms = tally.forms[key]
    pairs = tally.pair_forms.get(key)
    words = frozenset(forms) if pairs is None else frozenset(w for pair in pairs for w in pair)
    mentions = []
    for position in tally.sessions[key]:
        lines = _lines_with(prepared[position], words, pairs)
        mentions += [mention(prepared[position], i) for i in lines]
    # The form said most; on a tie the shorter ("night" before "nights").
    return Theme(label=min(forms, key=lambda f: (-forms[f], len(f), f)),
                 forms=tuple(sorted(forms)),
                 sessions=tuple(prepared[i].session.session_id for i in tally.sessions[key]),
                 count=tally.count[key], client_count=tally.client[key],
                 mentions=tuple(mentions))


def _lines_with(prepared: Prepared, words: frozenset[str],
                pairs: set[tuple[str, str]] | None) -> list[int]:
    """The first :data:`PER_SESSION` lines saying one of ``words`` (or of the word ``pairs``)."""
    found = []
    for index, line in enumerate(prepared.words):
        if words.isdisjoint(line):
            continue
        if pairs is None or not pairs.isdisjoint(pairwise(line)):
            found.append(index)
            if len(found) == PER_SESSION:
                break
    return found


def keys_of(text: str) -> dict[str, str]:
    """The folded content words of a free text (a goal), each with its form."""
    stop = stop_words()
    return {fold(w): w for w in words_of(text) if is_content(w, stop)}

