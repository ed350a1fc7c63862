"""Line by line: for a model too small to summarise with citations, one transcript line at a time.

Measured on the shared client series, SmolLM2-135M asked for a section over the
whole transcript copies its worked example or cites times no line starts at, so
the check keeps nothing. Asked to restate one line as a note sentence, it mostly
stays with that line. This pass picks the lines a section is about (by who
speaks and the section's cue words), asks for one sentence per line, and cites
that line: the citation is exact by construction, and the check still compares
the sentence with the line, so what the model adds of its own is caught.
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

from appliance.drafting import verify
from appliance.notes import times
from appliance.notes.facts import Line

SYSTEM = ("You turn one line of a therapy session transcript into one short sentence for the "
          "therapist's note. Use only what the line says; add nothing. Write about the client "
          "in the third person. Answer with the sentence only.")
# Words unlikely in a session, so that copying an example shows in the check.
EXAMPLES = (
    ("[0:05] Client: My canoe club moved to Fridays and I missed it.",
     "The client said the canoe club moved to Fridays and they missed it."),
    ("[0:09] Clinician: Could you write down each time the parrot wakes you?",
     "The clinician asked the client to write down each time the parrot wakes them."),
)
SENTENCE_TOKENS = 60
MIN_WORDS = 5

_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class Focus:
    """Which lines a section is about: who speaks, and words that mark the topic."""

    speaker: str  # "client", "clinician" or "any"
    cues: tuple[str, ...] = ()
    after_clinician: bool = False  # the client's answer to something the clinician did


REPORTED = Focus("client", ("feel", "felt", "week", "sleep", "work", "been", "worr", "scared",
                            "panic", "tired", "happen", "started", "since", "hard"))
DISCUSSED = Focus("any", ("better", "worse", "progress", "goal", "helped", "help", "improv",
                          "less", "more", "easier", "harder", "change", "notic", "manag"))
PLAN = Focus("any", ("homework", "next", "try", "practi", "plan", "will", "going to", "agree",
                     "keep", "continue", "appointment", "book", "before we meet", "week"))
INTERVENTION = Focus("clinician", ("try", "let's", "let us", "notice", "breath", "exercise",
                                   "imagine", "practi", "what", "how", "when", "plan", "log"))
RESPONSE = Focus("client", ("yes", "okay", "ok", "try", "helped", "will", "can", "think",
                            "felt", "better", "worse"), after_clinician=True)


def focus_for(instruction: str) -> Focus:
    """The focus of a section from its instruction (built-in ones by their wording)."""
    text = instruction.lower()
    for marker, focus in (("next steps", PLAN), ("what the clinician did", INTERVENTION),
                          ("responded", RESPONSE), ("progress", DISCUSSED),
                          ("client reported", REPORTED)):
        if marker in text:
            return focus
    words = tuple(w for w in _WORD.findall(text) if len(w) > 4)
    return Focus("any", words)


def _speaker_kind(line: Line, clinician: str) -> str:
    return "clinician" if line.speaker.lower() == clinician.lower() else "client"


def _score(line: Line, focus: Focus) -> float:
    text = f" {line.text.lower()} "
    cues = sum(1 for cue in focus.cues if cue in text)
    return cues + 0.05 * min(len(line.text.split()), 25)


def pick(lines: Sequence[Line], focus: Focus, count: int, clinician: str,
         avoid: Set[float] = frozenset()) -> list[Line]:
    """The ``count`` lines that best fit ``focus``, in time order.

    Lines with risk language are left to the risk screen; lines already used by
    an earlier section (``avoid``, by start) are skipped so sections differ.
    """
    risk = verify.terms()["risk"]
    candidates = []
    for index, line in enumerate(lines):
        kind = _speaker_kind(line, clinician)
        if focus.speaker != "any" and kind != focus.speaker:
            continue
        if focus.after_clinician and (index == 0 or _speaker_kind(lines[index - 1], clinician)
                                      != "clinician"):
            continue
        words = verify.normalise(line.text)
        if len(words.split()) < MIN_WORDS or line.start in avoid:
            continue
        if any(f" {term} " in f" {words} " for term in risk):
            continue
        candidates.append((_score(line, focus), line))
    best = sorted(candidates, key=lambda pair: -pair[0])[:count]
    return sorted((line for _, line in best), key=lambda line: line.start)


QUOTE_RULE = {"none": " Paraphrase; do not quote.", "some": "",
              "many": " Quote the client's own key words in double quotes."}


def messages(line: Line, quotes: str = "some") -> list[dict]:
    """The chat asking for one note sentence from one line (``quotes``: the practice's rule)."""
    shown = f"[{times.clock(line.start)}] {line.speaker}: {line.text.strip()}"
    chat = [{"role": "system", "content": SYSTEM + QUOTE_RULE.get(quotes, "")}]
    for example, answer in EXAMPLES:
        chat += [{"role": "user", "content": example}, {"role": "assistant", "content": answer}]
    return [*chat, {"role": "user", "content": shown}]


def sentence(answer: str) -> str:
    """The first sentence of an answer, without bullets or cited times.

    Only the first: what a small model adds after it is its own commentary.
    """
    for raw in answer.splitlines():
        text = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", raw).strip()
        text = re.sub(r"\[[0-9:,; ]+\]", "", text).strip()
        if text:
            return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0]
    return ""
