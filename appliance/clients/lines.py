"""A client's transcribed sessions as the analytics read them: who the client is, and the words.

The trends, the language cues, the themes and the goals all start here:
:func:`prepare` orders the sessions oldest first, works out which speaker is
the client in each (:func:`identify`) and splits every line into lower-case
words once, so recomputing everything for a hundred sessions stays cheap.
Pure functions of the transcript results; nothing is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from itertools import chain, pairwise

from appliance.notes.facts import UNKNOWN_SPEAKER
from appliance.transcript import TranscriptResult

# Words: split at spaces and punctuation (hyphens too), apostrophes inside a word kept
# ("don't"), quoting ones dropped. One str.translate over a whole session, not a regular
# expression per line: six times faster, and a hundred sessions hold 650,000 words.
_PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~“”«»…–—"
_QUOTES = "\u2018\u2019"  # typographic single quotes: apostrophes, or dropped as quoting ones
_SPLIT = str.maketrans({**dict.fromkeys(_PUNCTUATION, " "), **dict.fromkeys(_QUOTES, "'")})
# The label the stereo pipeline and enrolled-voice naming give the other person.
_CLIENT = "client"

NO_LINES = "This session has no transcript lines."
ONE_VOICE = ("Only one voice was told apart in this recording, so the client's lines cannot be "
             "told from the clinician's.")
UNNAMED = ("The speakers are not named (Speaker 1, Speaker 2 …), so none is known to be the "
           "clinician. Enrolling the clinician's voice (holdnote enroll-voice) names their lines.")
CROWDED = ("More than one person besides the clinician speaks, so the client's lines cannot be "
           "told apart.")


@dataclass(frozen=True)
class SessionText:
    """One transcribed session of a client, as the analytics take it."""

    session_id: int
    when: date
    result: TranscriptResult


@dataclass(frozen=True)
class Who:
    """Which speaker label is the client's in one session.

    ``client`` is None when it cannot be told; ``reason`` then says why, in
    words for the page (empty when the client is known).
    """

    client: str | None
    clinician: str | None
    reason: str = ""


@dataclass(frozen=True)
class Prepared:
    """One session ready for the analytics: who the client is, each line's words."""

    session: SessionText
    who: Who
    words: tuple[tuple[str, ...], ...]  # lower-case words of each segment, by segment index

    @cached_property
    def client_lines(self) -> tuple[int, ...]:
        """The indexes of the client's lines (none when the client cannot be told)."""
        client = self.who.client
        if client is None:
            return ()
        return tuple(i for i, seg in enumerate(self.session.result.segments)
                     if seg.speaker == client)

    def client_words(self) -> Iterator[str]:
        """Every word the client said, in order."""
        for index in self.client_lines:
            yield from self.words[index]

    # Counted once per session, split by who spoke, and kept: themes, goals and cues read them.
    @cached_property
    def client_counts(self) -> Counter[str]:
        """How often the client says each word (empty when the client is unknown)."""
        return Counter(chain.from_iterable(self.words[i] for i in self.client_lines))

    @cached_property
    def other_counts(self) -> Counter[str]:
        """How often everyone else (the clinician) says each word."""
        return Counter(chain.from_iterable(self.words[i] for i in self._other_lines))

    @cached_property
    def client_pairs(self) -> Counter[tuple[str, str]]:
        """How often the client says two words one after the other within a line."""
        return _pairs(self.words[i] for i in self.client_lines)

    @cached_property
    def other_pairs(self) -> Counter[tuple[str, str]]:
        """The same in everyone else's lines."""
        return _pairs(self.words[i] for i in self._other_lines)

    @property
    def vocabulary(self) -> set[str]:
        """Every distinct word said in the session."""
        return self.client_counts.keys() | self.other_counts.keys()

    @cached_property
    def _other_lines(self) -> tuple[int, ...]:
        client = set(self.client_lines)
        return tuple(i for i in range(len(self.words)) if i not in client)


def _pairs(lines: Iterable[tuple[str, ...]]) -> Counter[tuple[str, str]]:
    # One flat run with an empty word between lines: no pair spans two lines.
    flat = list(chain.from_iterable(chain(line, ("",)) for line in lines))
    return Counter(pairwise(flat))


def words_of(text: str) -> tuple[str, ...]:
    """The lower-case words of ``text`` (see :func:`split_lines`)."""
    return split_lines([text])[0]


def split_lines(texts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The lower-case words of each text: split at spaces, hyphens and punctuation.

    Apostrophes inside a word stay ("don't", typographic ones made plain); quoting ones go.
    """
    joined = " " + " \n ".join(t.replace("\n", " ") for t in texts).lower() + " "
    joined = joined.translate(_SPLIT).replace(" '", " ").replace("' ", " ")
    return tuple(tuple(line.split()) for line in joined.split("\n"))


def identify(result: TranscriptResult, clinician_name: str = "Clinician",
             enrolled: Iterable[str] = ()) -> Who:
    """Which speaker is the client, from the labels the transcript carries.

    A speaker labelled "Client" (stereo sessions, and mono ones where an enrolled
    voice named the clinician) is the client. Otherwise, when the clinician's lines
    are known (``clinician_name`` or an enrolled voice's name) and exactly one other
    person speaks, that person is. Anything else is not guessed.
    """
    names = [name for name in result.speakers if name != UNKNOWN_SPEAKER]
    clinician = result.clinician_label(clinician_name, enrolled)
    known = clinician if clinician in names else None
    labelled = [name for name in names if name.casefold() == _CLIENT and name != known]
    if len(labelled) == 1:
        return Who(labelled[0], known)
    if not names:
        return Who(None, None, NO_LINES)
    if len(names) == 1:
        return Who(None, known, ONE_VOICE)
    if known is None:
        return Who(None, None, UNNAMED)
    others = [name for name in names if name != known]
    return Who(others[0], known) if len(others) == 1 else Who(None, known, CROWDED)


def prepare(sessions: Iterable[SessionText], clinician_name: str = "Clinician",
            enrolled: Iterable[str] = ()) -> tuple[Prepared, ...]:
    """The sessions oldest first, each with its client worked out and its lines split into words."""
    enrolled = tuple(enrolled)
    ordered = sorted(sessions, key=lambda s: (s.when, s.session_id))
    return tuple(Prepared(s, identify(s.result, clinician_name, enrolled),
                          split_lines([seg.text for seg in s.result.segments]))
                 for s in ordered)
