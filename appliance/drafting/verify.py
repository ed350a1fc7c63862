"""The grounding check: every drafted statement against the transcript lines it cites.

A statement must cite at least one transcript line (by the start time the page
shows); one that cites none, or only times no line starts at, is dropped and
counted. A statement that cites real lines is kept only if everything in it
that is a fact in its own right is in those lines: numbers (as digits or
words), names and other capitalised words, quoted words, medications,
diagnoses, "assumed normal" findings and measurements (the reviewable lists in
``grounding_terms.toml``). Risk language is never taken from the model: the
risk screen puts its flags into the note verbatim. A statement that fails is
kept out of the note's text and shown to the clinician with the reason.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from appliance.drafting import parse
from appliance.notes import risk
from appliance.notes.facts import Line

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "hundred": "100", "first": "1", "second": "2",
    "third": "3", "fourth": "4", "fifth": "5", "once": "1", "twice": "2", "half": "0.5",
    "dozen": "12",
}
# Capitalised words that are the note's own words, not facts about the client.
_OWN_WORDS = frozenset({
    "the", "a", "an", "they", "she", "he", "it", "this", "that", "these", "those", "there",
    "their", "her", "his", "its", "we", "i", "client", "clients", "clinician", "therapist",
    "counsellor", "counselor", "both", "during", "after", "before", "when", "while", "in",
    "on", "at", "for", "with", "next", "homework", "together", "session", "sessions", "not",
    "no", "also", "then", "later", "earlier", "overall", "they'd", "they're", "they've",
    "they'll", "she's", "he's", "she'd", "he'd", "it's", "there's", "speaker", "speakers",
})
_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,}?)[\"“”]")
_WORD = re.compile(r"[a-z0-9]+(?:[.'’-][a-z0-9]+)*")
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z'’-]*\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class Verdict:
    """What the check decided: kept (``ok``), marked (``problem``), or dropped (no citation)."""

    ok: bool
    citations: tuple[float, ...]
    problem: str | None = None

    @property
    def dropped(self) -> bool:
        """True when the statement cites no transcript line at all."""
        return not self.citations


@cache
def terms() -> dict[str, tuple[str, ...]]:
    """The reviewable term lists, lower case (read once)."""
    text = resources.files("appliance.drafting").joinpath("grounding_terms.toml").read_text()
    return {kind: tuple(t.lower() for t in values) for kind, values in tomllib.loads(text).items()}


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces (punctuation and curly quotes gone)."""
    text = text.lower().replace("’", "'")
    return " ".join(_WORD.findall(text))


def _numbers(text: str) -> set[str]:
    words = normalise(text).split()
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    return found | {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS}


def _has(words: str, term: str) -> bool:
    return f" {normalise(term)} " in f" {words} "


# Speaker labels ("Speaker 2") name a voice, not a fact: neither a number nor a name.
_SPEAKER_LABEL = re.compile(r"\bspeaker\s+\d+\b", re.IGNORECASE)


def _unsupported(text: str, cited: str, transcript_words: set[str]) -> str | None:
    """The first fact in ``text`` missing from ``cited`` (normalised), as a reason, or None."""
    text = _SPEAKER_LABEL.sub("speaker", text)
    for number in sorted(_numbers(text) - _numbers(cited)):
        return f"the number {number} is not in the cited lines"
    for quote in _QUOTED.findall(text):
        if not _has(cited, quote):
            return f"the quoted words “{quote.strip()}” are not in the cited lines"
    if problem := _unsupported_names(text, cited, transcript_words):
        return problem
    words = normalise(text)
    for kind in ("risk", "medications", "diagnoses", "assumed"):
        for term in terms()[kind]:
            if _has(words, term) and (kind == "risk" or not _has(cited, term)):
                return _term_reason(kind, term)
    return _unsupported_words(words, cited)


def _unsupported_words(words: str, cited: str) -> str | None:
    """A statement saying much the cited lines do not: its content words mostly absent.

    Catches what the lists cannot (a small model copying its worked example, or
    a topic nobody raised). Words count by their first four letters, so "sleeping"
    matches "sleep"; the note's own vocabulary ("reported", "discussed") is free.
    """
    content = [w for w in words.split() if len(w) >= 4 and w not in terms()["note_words"]]
    if not content:
        return None
    said = {w[:4] for w in cited.split()}
    missing = [w for w in content if w[:4] not in said]
    if len(missing) * 3 > len(content):
        shown = ", ".join(f"“{w}”" for w in dict.fromkeys(missing[:4]))
        return f"says more than the cited lines ({shown} are not in them)"
    return None


def _unsupported_names(text: str, cited: str, transcript_words: set[str]) -> str | None:
    body = _QUOTED.sub("", text)
    for position, match in enumerate(_CAPITALISED.finditer(body)):
        word = match[0]
        lower = normalise(word)
        if not lower or lower in _OWN_WORDS:
            continue
        # A sentence's first word is capitalised anyway: a name only when the
        # transcript never uses it as an ordinary (lower-case) word and it is not
        # one of the ordinary words statements start with.
        if (position == 0 and match.start() == _first_letter(body)
                and (lower in transcript_words or lower in terms()["sentence_starts"])):
            continue
        if not _has(cited, lower):
            return f"“{word}” is not in the cited lines"
    return None


def _first_letter(text: str) -> int:
    found = re.search(r"[A-Za-z]", text)
    return found.start() if found else 0


def _term_reason(kind: str, term: str) -> str:
    if kind == "risk":
        return (f"mentions risk (“{term}”): risk language is reported verbatim by the risk "
                "screen, never summarised")
    label = {"medications": "medication", "diagnoses": "diagnosis",
             "assumed": "finding a transcript cannot show"}[kind]
    return f"the {label} “{term}” is not in the cited lines"


def verify(raw: parse.Raw, lines: Sequence[Line], transcript_words: set[str],
           clinician: str = "Clinician") -> Verdict:
    """Check one statement against the lines it cites (``lines``: the whole transcript).

    ``transcript_words`` are the lower-case words used anywhere in the transcript
    (:func:`lower_case_words`), to tell a sentence's first word from a name;
    ``clinician`` is the clinician's speaker label, to check who said what.
    """
    cited_lines = parse.resolve(raw.cited, lines)
    citations = tuple(line.start for line in cited_lines)
    if not citations:
        return Verdict(False, ())
    cited = normalise(" ".join(line.text for line in cited_lines))
    problem = (_wrong_speaker(raw.text, cited_lines, clinician)
               or _unsupported(raw.text, cited, transcript_words) or _risk_language(raw.text))
    return Verdict(problem is None, citations, problem)


def _wrong_speaker(text: str, cited: Sequence[Line], clinician: str) -> str | None:
    """"The client said …" citing only the clinician's lines (a question read as an answer)."""
    subject = normalise(text).split()[:2]
    by_clinician = [line.speaker.lower() == clinician.lower() for line in cited]
    if subject == ["the", "client"] and all(by_clinician):
        return "it gives the clinician's words to the client"
    if subject and subject[-1] in ("clinician", "therapist") and not any(by_clinician):
        return "it gives the client's words to the clinician"
    return None


def _risk_language(text: str) -> str | None:
    """Risk language the screen's own lexicon finds in the statement (any person, any tense)."""
    first_person = re.sub(r"\b(the client|they|she|he)\b", "I", text, flags=re.IGNORECASE)
    found = risk.find_risk_flags([{"start": 0.0, "end": 0.0, "speaker": "Client", "text": first_person}])
    if found:
        return _term_reason("risk", found[0].term)
    return None


def lower_case_words(lines: Sequence[Line]) -> set[str]:
    """Words the transcript uses in lower case somewhere (ordinary words, not names)."""
    found: set[str] = set()
    for line in lines:
        found.update(w for w in re.findall(r"[A-Za-z'’-]+", line.text) if w.islower())
    return {normalise(w) for w in found}
