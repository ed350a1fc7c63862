"""What was planned last time, and where this session took it up: pure logic, no model.

The previous signed note's plan (its "plan" section, or a custom template's
section about plans, homework or next steps) is cut into items (:func:`plan_items`).
Each item is matched against this session's transcript lines by its key words,
stemmed simply ("breathing" and "breathe" are one word, "logs" and "log" too):
the line sharing the most key words wins, the earliest on a tie
(:func:`best_line`). The statement says "discussed at 4:12" citing that line's
start, or "not discussed in this session" with no citation when no line shares
a key word (:func:`statements`). Every statement is checked again by
:func:`check`, through the drafting check of :mod:`verify`; the citations come
from code, never from a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from appliance.drafting import parse, verify
from appliance.notes import render, times
from appliance.notes.facts import Line
from appliance.notes.words import fold as stem

KEY = "followup"
TITLE = "From last session"
DISCUSSED = "discussed at"
NOT_DISCUSSED = "not discussed in this session."

# Sections of a custom template that hold the plan: by key or title.
_PLAN_SECTION = re.compile(r"plan|homework|next|between sessions", re.IGNORECASE)
# Words a plan item shares with most sessions: they say nothing about *which* item.
_STOP = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "been", "before", "being", "below", "between", "both", "but", "by",
    "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each", "either",
    "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just",
    "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours", "yes", "okay", "ok", "let", "lets", "let's", "keep", "kept", "try", "trying",
    "continue", "practise", "practice", "practising", "start", "make", "use", "write", "note",
    "notice", "aim", "plan", "planned", "planning", "homework", "session", "sessions", "week",
    "weeks", "weekly", "day", "days", "daily", "night", "nights", "nightly", "time", "times",
    "minute", "minutes", "next", "last", "go", "going", "get", "got", "bring", "client",
    "clinician", "therapist", "discuss", "discussed", "agreed", "agree", "asked", "ask", "told",
    "tell", "said", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    "nine", "ten", "twice"
})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)]|\(?[a-z]\))\s+")
_BRACKETED = re.compile(r"\[[^\]]*\]")
_CITED = re.compile(r"\s*[\[(]\s*\d{1,2}:\d{2}(?::\d{2})?(?:\s*[,;]\s*\d{1,2}:\d{2}(?::\d{2})?)*\s*[\])]")
_LABEL = re.compile(r"^(?:homework|between sessions|next steps?|next session|plan|tasks?)\s*:\s*",
                    re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])|\s*;\s*")


@dataclass(frozen=True)
class Match:
    """The transcript line that takes a plan item up, and the key words they share."""

    line: Line
    shared: tuple[str, ...]  # the line's own words that matched, in the line's order


def key_words(text: str) -> dict[str, str]:
    """The key words of ``text`` by stem (stem -> the word as written), in order."""
    found: dict[str, str] = {}
    for word in _WORD.findall(text.lower().replace("’", "'")):
        if len(word) >= 3 and word not in _STOP:
            found.setdefault(stem(word), word)
    return found


def plan_sections(note: Mapping) -> list[Mapping]:
    """The sections of a note that hold its plan: key "plan", else any about plans or homework."""
    sections = [s for s in note.get("sections") or [] if isinstance(s, Mapping)]
    exact = [s for s in sections if s.get("key") == "plan"]
    if exact:
        return exact
    return [s for s in sections if not s.get("auto")
            and _PLAN_SECTION.search(f"{s.get('key', '')} {s.get('title', '')}")]


def plan_items(text: str) -> list[str]:
    """A plan's items: one per line, bullet, semicolon or sentence; prompts and times left out.

    What is left of an unfilled bracketed prompt, "Not discussed.", the times a
    drafted statement cites and items with no key word are not items.
    """
    items: list[str] = []
    for raw in _BRACKETED.sub(" ", text).splitlines():
        line = _CITED.sub("", _BULLET.sub("", raw)).strip()
        for part in _SENTENCES.split(line):
            item = _LABEL.sub("", part.strip()).strip(" .;,-–—").strip()
            if item and key_words(item) and not parse.NOT_DISCUSSED.match(item) \
                    and item not in items:
                items.append(item)
    return items


def note_plan_items(note: Mapping) -> list[str]:
    """The items of a note's plan sections, in order (only the note's body: never addenda)."""
    items: list[str] = []
    for section in plan_sections(note):
        items += [item for item in plan_items(render.section_text(section)) if item not in items]
    return items


def best_line(item: str, lines: Sequence[Line]) -> Match | None:
    """The line sharing the most key words with ``item`` (the earliest on a tie), or None."""
    wanted = key_words(item)
    best: Match | None = None
    for line in lines:
        said = key_words(line.text)
        shared = tuple(word for stemmed, word in said.items() if stemmed in wanted)
        if shared and (best is None or len(shared) > len(best.shared)):
            best = Match(line, shared)
    return best


def _sentence(item: str) -> str:
    return item[:1].upper() + item[1:]


def statement(item: str, lines: Sequence[Line], source: str,
              transcript_words: set[str] | None = None, clinician: str = "Clinician") -> dict:
    """One item as a note statement: where this session took it up, or that it did not."""
    found = best_line(item, lines)
    head = f"{_sentence(item)} (from last session)"
    if found is None:
        made = {"text": f"{head}: {NOT_DISCUSSED}", "citations": [], "absent": True}
    else:
        made = {"text": f"{head}: {DISCUSSED} {times.clock(found.line.start)}",
                "citations": [found.line.start], "matched": list(found.shared), "absent": False}
    made.update(item=item, source=source, verified=False, problem=None)
    ok, problem = check(made, lines, transcript_words, clinician)
    made.update(verified=ok, problem=problem)
    return made


def statements(items: Iterable[str], lines: Sequence[Line], source: str,
               clinician: str = "Clinician") -> list[dict]:
    """The statements of every item, in the plan's order."""
    words = verify.lower_case_words(lines)
    return [statement(item, lines, source, words, clinician) for item in items]


def check(made: Mapping, lines: Sequence[Line], transcript_words: set[str] | None = None,
          clinician: str = "Clinician") -> tuple[bool, str | None]:
    """Check a follow-up statement against the transcript: (kept, the reason when not).

    "Discussed at": the citation must be a line's start and the drafting check
    (:func:`verify.verify`) must find the matched key words in that line, as it
    does for any drafted statement. "Not discussed" cites nothing on purpose: it
    states an absence, which no line can support, so its check is the converse,
    made by code over the whole transcript: no line shares a key word with the
    item. It is kept as a checked statement, not dropped as uncited.
    """
    item = str(made.get("item", ""))
    if made.get("absent"):
        if made.get("citations"):
            return False, "a statement that something was not discussed cites no line"
        found = best_line(item, lines)
        if found is not None:
            return False, f"the item was taken up at {times.clock(found.line.start)}"
        return True, None
    matched = [str(w) for w in made.get("matched") or []]
    if not matched or not set(map(stem, matched)) <= set(key_words(item)):
        return False, "the matched words are not the item's"
    cited = tuple(times.clock(float(c)) for c in made.get("citations") or [])
    words = transcript_words if transcript_words is not None else verify.lower_case_words(lines)
    verdict = verify.verify(parse.Raw(" ".join(matched), cited), lines, words, clinician)
    if verdict.dropped:
        return False, "it cites no transcript line"
    if verdict.ok and not _all_in(matched, parse.resolve(cited, lines)):
        return False, "the matched words are not in the cited line"
    return verdict.ok, verdict.problem


def _all_in(words: Sequence[str], cited: Sequence[Line]) -> bool:
    said = {stem(w) for line in cited for w in _WORD.findall(line.text.lower())}
    return all(stem(w) in said for w in words)


def section_text(made: Sequence[Mapping], source: str) -> str:
    """The section's text: where it came from, then each kept statement on its own line."""
    kept = [str(s["text"]) for s in made if s.get("verified")]
    return "\n".join([f"{source}:", *kept]) if kept else ""
