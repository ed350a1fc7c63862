"""What one clinician line is: open or closed question, reflection (the rules of "Your interventions").

The word lists live in ``interventions.toml`` beside this module, so the rules
can be read and reviewed without the code. Pure functions of the text.

* A *question* is a sentence ending in "?", one starting with a question
  word ("what", "how" …) that has no "." or "!" at its end, or an invitation
  said as a statement ("Tell me more about …", "Describe …").
* It is *open* when it starts with an open phrase ("what", "how", "why",
  "where", "tell me", "describe", "in what way", "could you tell" …) and is
  neither a tag question ("…, isn't it?") nor after one fact ("how many",
  "how long" …); every other question is *closed* (those starting with an
  auxiliary, "do", "is", "can", "would" …; "who", "when", "which"; "Any …?").
  A line counts as an open question when any of its questions is open, else
  as a closed one when it asks any.
* A line is a *reflection* when one of its statements (not its questions)
  starts with a reflection opener ("it sounds like", "that sounds", "so",
  "you feel", "you're saying" …), or, right after a client line, shares at
  least ``shared_words`` content words with it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

OPEN = "open"
CLOSED = "closed"

# A sentence ends at ".", "!" or "?" followed by a space (or the end of the line).
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Rules:
    """The word lists of ``interventions.toml``, each phrase as a tuple of words."""

    question_words: frozenset[str]
    prompts: tuple[tuple[str, ...], ...]
    open: tuple[tuple[str, ...], ...]
    closed_how: tuple[tuple[str, ...], ...]
    tags: tuple[tuple[str, ...], ...]
    openers: tuple[tuple[str, ...], ...]
    shared_words: int
    stop_words: frozenset[str]


@dataclass(frozen=True)
class LineKind:
    """What one clinician line does: ``question`` is "open", "closed" or ""."""

    question: str
    reflection: bool


def words(text: str) -> tuple[str, ...]:
    """The lower-case words of ``text`` (typographic apostrophes made plain)."""
    return tuple(_WORD.findall(text.lower().replace("\u2019", "'")))


@cache
def rules() -> Rules:
    """The rules shipped with the package (appliance/notes/interventions.toml)."""
    text = resources.files("appliance.notes").joinpath("interventions.toml").read_text("utf-8")
    data = tomllib.loads(text)
    q, r = data["questions"], data["reflections"]

    def phrases(items: list[str]) -> tuple[tuple[str, ...], ...]:
        return tuple(words(item) for item in items)

    return Rules(frozenset(q["question_words"]), phrases(q["prompts"]), phrases(q["open"]),
                 phrases(q["closed_how"]), phrases(q["tags"]), phrases(r["openers"]), int(r["shared_words"]),
                 frozenset(r["stop_words"]))


def sentences(text: str) -> list[str]:
    """The sentences of a line, each with its closing punctuation."""
    return [s.strip() for s in _SENTENCE.findall(text) if words(s)]


def _starts(said: tuple[str, ...], phrases: tuple[tuple[str, ...], ...]) -> bool:
    return any(said[:len(p)] == p for p in phrases)


def is_question(sentence: str, r: Rules) -> bool:
    """A sentence ending in "?", one starting with a question word and not ending in "." or "!",
    or an invitation said as a statement ("Tell me more …", "Describe …")."""
    end = sentence.rstrip()[-1:]
    said = words(sentence)
    if end == "?" or _starts(said, r.prompts):
        return True
    return end not in ".!" and bool(said) and said[0] in r.question_words


def _tagged(sentence: str, r: Rules) -> bool:
    """"…, isn't it?": the words after the last comma are a tag."""
    head, comma, tail = sentence.rpartition(",")
    return bool(comma and head) and words(tail) in r.tags


def question_kind(sentence: str, r: Rules) -> str:
    """"open" or "closed" for a question sentence (see the module's rules)."""
    said = words(sentence)
    if _tagged(sentence, r) or _starts(said, r.closed_how):
        return CLOSED
    return OPEN if _starts(said, r.open) else CLOSED


def content_words(text: str, r: Rules) -> set[str]:
    """Words of three letters or more that are not stop words."""
    return {w for w in words(text) if len(w) >= 3 and w not in r.stop_words}


def classify(text: str, after_client: str | None, r: Rules | None = None) -> LineKind:
    """What a clinician line is; ``after_client`` is the client line just before it, if any."""
    r = r or rules()
    asked: list[str] = []
    stated: list[str] = []
    for sentence in sentences(text):
        (asked if is_question(sentence, r) else stated).append(sentence)
    kinds = {question_kind(s, r) for s in asked}
    question = OPEN if OPEN in kinds else CLOSED if kinds else ""
    return LineKind(question, _reflects(stated, after_client, r))


def _reflects(stated: list[str], after_client: str | None, r: Rules) -> bool:
    if any(_starts(words(s), r.openers) for s in stated):
        return True
    if after_client is None or not stated:
        return False
    shared = content_words(" ".join(stated), r) & content_words(after_client, r)
    return len(shared) >= r.shared_words
