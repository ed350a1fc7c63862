"""The phrase lists of "Moments to review" (rupture_lexicon.toml) and how they are matched.

Text and phrases go through the same :func:`words`: lower case, contractions spelled
out ("don't" is "do not"), split at spaces and punctuation. A line is matched one
sentence at a time (:func:`sentences`), so a phrase never spans two sentences and a
question can be told from a statement. The phrase syntax is described at the top of
rupture_lexicon.toml. Pure; the lexicon is read once.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from appliance.notes.risk_match import LexiconError

_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE = re.compile(r"[^.!?;]+[.!?;]*")
# Irregular contractions first; then the regular endings.
_IRREGULAR = {"can't": "can not", "won't": "will not", "cannot": "can not", "let's": "let us",
              "i'm": "i am", "shan't": "shall not", "ain't": "is not"}
_ENDINGS = (("n't", " not"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"),
            ("'d", " would"), ("'s", " is"))
ANY_WORD = "_"
# Sentence openers of a closed question: they invite a short answer.
CLOSED_OPENERS = frozenset({"do", "does", "did", "is", "are", "was", "were", "have", "has",
                            "can", "could", "would", "will", "shall", "should", "any",
                            "anything"})


@dataclass(frozen=True)
class Sentence:
    """One sentence of a line: its words, and whether it asks a question."""

    words: tuple[str, ...]
    question: bool


@dataclass(frozen=True)
class Lexicon:
    """Every list of rupture_lexicon.toml, compiled."""

    confrontation: tuple[Phrase, ...]
    feeling: tuple[Phrase, ...]
    targets: tuple[Phrase, ...]
    withdrawal: tuple[Phrase, ...]
    interpretation: tuple[Phrase, ...]
    repair: tuple[Phrase, ...]
    not_repair: tuple[Phrase, ...]
    negators: frozenset[str]
    reported: frozenset[str]


@dataclass(frozen=True)
class Phrase:
    """One compiled phrase: per position the words allowed (empty: any) and whether optional."""

    text: str
    slots: tuple[tuple[frozenset[str], bool], ...]

    def find(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """Every (start, end) where the phrase matches ``words``."""
        found = []
        for start in range(len(words)):
            end = self._match(words, start, 0)
            if end is not None:
                found.append((start, end))
        return found

    def possible(self, present: set[str] | frozenset[str]) -> bool:
        """Whether each required word of the phrase is among the sentence's words at all."""
        return all(need & present for need in self.needs)

    @functools.cached_property
    def needs(self) -> tuple[frozenset[str], ...]:
        """The word sets of the required slots (a slot with a multi-word choice is left out)."""
        return tuple(allowed for allowed, optional in self.slots
                     if allowed and not optional and all(" " not in w for w in allowed))

    def _match(self, words: Sequence[str], at: int, slot: int) -> int | None:
        if slot == len(self.slots):
            return at
        allowed, optional = self.slots[slot]
        if at < len(words) and (not allowed or words[at] in allowed):
            end = self._match(words, at + 1, slot + 1)
            if end is not None:
                return end
        return self._match(words, at, slot + 1) if optional else None


def words(text: str) -> tuple[str, ...]:
    """The words of ``text``: lower case, typographic apostrophes plain, contractions spelled out."""
    out: list[str] = []
    for found in _WORD.findall(text.lower().replace("\u2019", "'").replace("\u2018", "'")):
        out.extend(_parts(found))
    return tuple(out)


@functools.lru_cache(maxsize=8192)  # a session says the same few thousand words again and again
def _parts(found: str) -> tuple[str, ...]:
    return tuple(_spelled_out(found.strip("'")).split())


def _spelled_out(word: str) -> str:
    """``word`` with its contraction spelled out ("don't" is "do not")."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for ending, full in _ENDINGS:
        if word.endswith(ending) and len(word) > len(ending):
            return word[: -len(ending)] + full
    return word


def sentences(text: str) -> tuple[Sentence, ...]:
    """The sentences of one line, each split into :func:`words`."""
    found = []
    for piece in _SENTENCE.findall(text):
        said = words(piece)
        if said:
            found.append(Sentence(said, "?" in piece))
    return tuple(found)


def compile_phrase(text: str) -> Phrase:
    """A phrase of the lexicon's syntax, compiled (see rupture_lexicon.toml)."""
    slots: list[tuple[frozenset[str], bool]] = []
    for written in text.split():
        optional = written.startswith("[") and written.endswith("]")
        bare = written.strip("[]")
        choices = frozenset() if bare == ANY_WORD else frozenset(
            " ".join(words(choice)) for choice in bare.split("|"))
        # A choice that spells out to two words ("you're") is one slot per word.
        if any(" " in choice for choice in choices):
            slots.extend((frozenset({part}), optional) for part in next(iter(choices)).split())
        else:
            slots.append((choices, optional))
    return Phrase(text, tuple(slots))


def parse(text: str) -> Lexicon:
    """The lexicon in ``text`` (TOML), compiled; LexiconError names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(f"rupture lexicon is not valid TOML: {exc}") from exc

    def listed(section: str, key: str) -> list[str]:
        found = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if not isinstance(found, list) or not found or not all(
                isinstance(p, str) and words(p) for p in found):
            raise LexiconError(f"rupture lexicon [{section}] {key}: needs a list of phrases, "
                               "each with at least one word")
        return found

    def phrases(section: str, key: str = "phrases") -> tuple[Phrase, ...]:
        return tuple(compile_phrase(p) for p in listed(section, key))

    return Lexicon(phrases("confrontation"), phrases("feeling"), phrases("feeling", "targets"),
                   phrases("withdrawal"), phrases("interpretation"), phrases("repair"),
                   phrases("repair", "not"), frozenset(listed("guards", "negators")),
                   frozenset(listed("guards", "reported")))


@cache
def lexicon() -> Lexicon:
    """The lexicon shipped with the package (appliance/notes/rupture_lexicon.toml)."""
    text = resources.files("appliance.notes").joinpath("rupture_lexicon.toml").read_text(
        encoding="utf-8")
    return parse(text)


def negated(sentence: Sentence, start: int, lex: Lexicon) -> bool:
    """Whether a negator stands up to three words before ``start`` ("not that you …")."""
    return any(word in lex.negators for word in sentence.words[max(0, start - 3):start])


def reported(sentence: Sentence, start: int, lex: Lexicon) -> bool:
    """Whether it is quoted from another conversation ("my mum says you don't …").

    A reporting verb before it in the sentence makes it so, unless the verb is
    said to the clinician: "I told you, that's not what I said".
    """
    said = (*sentence.words[:start], "")
    return any(word in lex.reported and said[i + 1] != "you" for i, word in enumerate(said[:-1]))


# Per phrase list (kept alive by the cached lexicon): the positions of its phrases by
# one word each of them needs, and those that need no particular word.
_INDEXES: dict[int, tuple[Sequence[Phrase], dict[str, list[int]], list[int]]] = {}


def _index(phrases: Sequence[Phrase]) -> tuple[dict[str, list[int]], list[int]]:
    cached = _INDEXES.get(id(phrases))
    if cached is not None and cached[0] is phrases:
        return cached[1], cached[2]
    by_word: dict[str, list[int]] = {}
    always: list[int] = []
    for position, phrase in enumerate(phrases):
        if not phrase.needs:
            always.append(position)
        for word in phrase.needs[0] if phrase.needs else ():
            by_word.setdefault(word, []).append(position)
    _INDEXES[id(phrases)] = (phrases, by_word, always)
    return by_word, always


def hits(sentence: Sentence, phrases: Sequence[Phrase], lex: Lexicon) -> list[tuple[int, int]]:
    """Where any of ``phrases`` matches, neither negated nor reported speech.

    Only the phrases whose required words the sentence holds are tried: matching every
    phrase at every position was most of a 100-session client page's first view.
    """
    by_word, always = _index(phrases)
    present = set(sentence.words)
    tried = sorted({*always, *(p for word in present for p in by_word.get(word, ()))})
    return [(start, end) for position in tried if phrases[position].possible(present)
            for start, end in phrases[position].find(sentence.words)
            if not negated(sentence, start, lex) and not reported(sentence, start, lex)]


def closed_question(text: str) -> bool:
    """Whether a line ends in a closed question ("Any panic this week?"): it asks for a short answer."""
    said = sentences(text)
    return bool(said) and said[-1].question and said[-1].words[0] in CLOSED_OPENERS
