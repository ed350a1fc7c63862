"""Tolerant phrase matching for the risk lexicon (risk_lexicon.toml).

A phrase is matched word by word against a sentence. One word of a long phrase
may be misheard, because a small speech model turns "better off without me" into
"mader off without me" and "a burden" into "a virgin": the risk must still show.
The phrase syntax is described at the top of risk_lexicon.toml.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from appliance.errors import HoldnoteError

_GAP_WORDS = 6
# Phrases this long (required words) tolerate one misheard word; shorter ones
# ("want to die") would match too much ordinary speech.
_FUZZY_MIN_WORDS = 4
# Words that carry no content: a misheard one is no evidence, and one heard in
# place of a content word is more often a different sentence than a mishearing.
_FUNCTION_WORDS = frozenset([
    "a", "an", "the", "i", "me", "my", "you", "your", "he", "him", "his", "she", "her", "it", "its",
    "we", "us", "our", "they", "them", "their", "to", "of", "in", "on", "at", "for", "by", "with",
    "and", "or", "but", "if", "so", "is", "am", "are", "was", "were", "be", "been", "do", "did",
    "does", "not", "no", "that", "this", "what", "like", "just", "all", "off", "up", "out",
])
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_SOUND = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
          "l": "4", "m": "5", "n": "5", "r": "6"}


class LexiconError(HoldnoteError, ValueError):
    """The risk lexicon file cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Word:
    """One word of a sentence with its character span."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Slot:
    """One position of a phrase: literal options (``*`` = prefix), ``_`` or ``...``."""

    options: tuple[str, ...]
    optional: bool = False
    kind: str = "word"  # "word", "any" or "gap"
    prefixes: tuple[str, ...] = ()  # the options written word*, without the star

    def seen_in(self, vocabulary: frozenset[str]) -> bool:
        """Does one of the sentence's words match this slot exactly?"""
        if not vocabulary.isdisjoint(self.options):
            return True
        return bool(self.prefixes) and any(w.startswith(self.prefixes) for w in vocabulary)


@dataclass(frozen=True)
class Phrase:
    """A parsed lexicon phrase of one category."""

    category: str
    text: str
    slots: tuple[Slot, ...]
    fuzzy: bool
    required: tuple[Slot, ...] = ()  # the word slots that must be there, for a quick pre-check

    @property
    def plain(self) -> str:
        """The first wording, for people: "feel|felt like [such] a burden" is "feel like a burden"."""
        return " ".join(s.options[0].rstrip("*") for s in self.slots if s.kind == "word" and not s.optional)


@dataclass(frozen=True)
class Hit:
    """Where a phrase matched: word indices [first, last) and any misheard word."""

    phrase: Phrase
    first: int
    last: int
    heard: str = ""  # the sentence's word that stood in for a lexicon word


_WILDCARDS = {"...": Slot((), True, "gap"), "_": Slot((), False, "any")}


def words(sentence: str) -> list[Word]:
    """The sentence's words, lower-cased, with curly apostrophes made straight."""
    text = sentence.lower().replace("\u2019", "'").replace("\u2018", "'")
    return [Word(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def _slot(token: str, where: str) -> Slot:
    if token in _WILDCARDS:
        return _WILDCARDS[token]
    optional = token.startswith("[") and token.endswith("]")
    options = tuple(token.strip("[]").split("|"))
    if not all(re.fullmatch(r"[a-z0-9']+\*?", o) for o in options):
        raise LexiconError(
            f"{where}: cannot read {token!r}; use lower-case words, a|b, [a|b], word*, _ or ...")
    return Slot(options, optional, prefixes=tuple(o[:-1] for o in options if o.endswith("*")))


def parse_phrase(category: str, text: str, where: str = "risk lexicon", tolerant: bool = True) -> Phrase:
    """A phrase in the lexicon syntax, ready to match; ``tolerant`` allows a misheard word."""
    slots = tuple(_slot(token, f"{where}, phrase {text!r}") for token in text.split())
    if not slots or all(s.optional or s.kind != "word" for s in slots):
        raise LexiconError(f"{where}: phrase {text!r} needs at least one required word")
    required = tuple(s for s in slots if s.kind == "word" and not s.optional)
    return Phrase(category, text, slots, tolerant and len(required) >= _FUZZY_MIN_WORDS, required)


def _sound(word: str) -> str:
    """Consonant classes in order, repeats merged: b/f/p/v sound alike, d/t, m/n, …"""
    code = ""
    for letter in word:
        digit = _SOUND.get(letter, "")
        if digit and not code.endswith(digit):
            code += digit
    return code


def _distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@lru_cache(maxsize=65536)  # the same word pairs recur all night; bounded for a long job
def misheard(expected: str, heard: str) -> bool:
    """Could ``heard`` be a speech model's mishearing of the content word ``expected``?"""
    if expected.endswith("*") or len(expected) < 4 or expected in _FUNCTION_WORDS:
        return False
    if heard in _FUNCTION_WORDS or len(heard) < 3 or not heard.isalpha():
        return False
    if len(expected) >= 5 and _distance(expected, heard) <= 1:
        return True
    a, b = _sound(expected), _sound(heard)
    return min(len(a), len(b)) >= 3 and _distance(a, b) <= 1


def _exact(option: str, word: str) -> bool:
    return word.startswith(option[:-1]) if option.endswith("*") else word == option


def _match(slots: tuple[Slot, ...], ws: list[Word], i: int, fuzzy: bool) -> tuple[int, str] | None:
    """End index and misheard word of a match of ``slots`` at word ``i``, else None."""
    if not slots:
        return i, ""
    slot, rest = slots[0], slots[1:]
    if slot.kind == "gap":
        for skip in range(_GAP_WORDS + 1):
            found = _match(rest, ws, i + skip, fuzzy) if i + skip <= len(ws) else None
            if found:
                return found
        return None
    if i < len(ws) and (slot.kind == "any" or any(_exact(o, ws[i].text) for o in slot.options)):
        found = _match(rest, ws, i + 1, fuzzy)
        if found:
            return found
    if fuzzy and i < len(ws) and slot.kind == "word" and any(misheard(o, ws[i].text) for o in slot.options):
        found = _match(rest, ws, i + 1, False)
        if found:
            return found[0], ws[i].text
    return _match(rest, ws, i, fuzzy) if slot.optional else None


def _possible(phrase: Phrase, vocabulary: frozenset[str]) -> bool:
    """Are enough of the phrase's required words in the sentence for a match? (cheap)"""
    allowed = 1 if phrase.fuzzy else 0
    for slot in phrase.required:
        if not slot.seen_in(vocabulary):
            allowed -= 1
            if allowed < 0:
                return False
    return True


def find(phrase: Phrase, ws: list[Word], vocabulary: frozenset[str] | None = None) -> list[Hit]:
    """Every non-overlapping match of ``phrase`` in the words, left to right.

    ``vocabulary`` (the set of the words' texts) may be passed in when many
    phrases are matched against one sentence.
    """
    if not _possible(phrase, vocabulary if vocabulary is not None else frozenset(w.text for w in ws)):
        return []
    hits, i = [], 0
    while i < len(ws):
        found = _match(phrase.slots, ws, i, phrase.fuzzy)
        if found and found[0] > i:
            hits.append(Hit(phrase, i, found[0], found[1]))
            i = found[0]
        else:
            i += 1
    return hits


@dataclass(frozen=True)
class Lexicon:
    """Risk phrases and benign idioms, by category, with each entry's reason."""

    phrases: tuple[Phrase, ...]
    benign: tuple[Phrase, ...]
    reasons: dict[str, list[str]]


def _entries(data: dict, key: str, need_reason: bool) -> list[tuple[str, list[str], str]]:
    rows = []
    for n, entry in enumerate(data.get(key, []), 1):
        where = f"risk lexicon [[{key}]] number {n}"
        category, phrases, reason = entry.get("category"), entry.get("phrases"), entry.get("reason", "")
        if not isinstance(category, str) or not category.strip():
            raise LexiconError(f"{where}: needs a category")
        if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) for p in phrases):
            raise LexiconError(f"{where} ({category}): needs a non-empty list of phrases")
        if need_reason and not (isinstance(reason, str) and reason.strip()):
            raise LexiconError(f"{where} ({category}): needs a one-line reason")
        rows.append((category, phrases, reason))
    return rows


def parse_lexicon(text: str) -> Lexicon:
    """A lexicon from the TOML text; LexiconError names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(f"risk lexicon is not valid TOML: {exc}") from exc
    entries = _entries(data, "entry", True)
    if not entries:
        raise LexiconError("risk lexicon has no [[entry]] tables")
    reasons: dict[str, list[str]] = {}
    for category, _, reason in entries:
        reasons.setdefault(category, []).append(reason)
    return Lexicon(
        tuple(parse_phrase(c, p, f"risk lexicon ({c})") for c, ps, _ in entries for p in ps),
        # Idioms match exactly: "feel like a new person" must not excuse "feel like a burden".
        tuple(parse_phrase(c, p, f"risk lexicon benign ({c})", False)
              for c, ps, _ in _entries(data, "benign", False) for p in ps),
        reasons,
    )


@cache
def lexicon() -> Lexicon:
    """The lexicon shipped with the package (appliance/notes/risk_lexicon.toml)."""
    text = resources.files("appliance.notes").joinpath("risk_lexicon.toml").read_text(encoding="utf-8")
    return parse_lexicon(text)
