"""Risk-language flags: a screening aid for the clinician, not an assessment.

The phrases are data (risk_lexicon.toml, matched tolerantly by risk_match); this
module decides what a match means: denied or not, a wish said with "no plan", a
question asked or an answer given. It errs towards flagging: a denial ("I'm not
suicidal") is flagged with ``negated=True`` rather than dropped, and so is an
answer to a risk question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from appliance.notes import risk_match
from appliance.notes.facts import UNKNOWN_SPEAKER, Line, transcript_lines
from appliance.transcript import RiskFlag

# --- risk language ------------------------------------------------------------------

# Categories, after the Columbia suicide severity rating scale's map. The phrases
# for each live in risk_lexicon.toml, where a clinician can review them.
PASSIVE_WISH, SUICIDAL_THOUGHTS, MEANS_OR_PLAN, PREPARATORY, HOPELESSNESS = (
    "passive wish", "suicidal thoughts", "means or plan", "preparatory acts", "hopelessness",
)
SELF_HARM, HARM_TO_OTHERS, ABUSE, SUBSTANCE = ("self-harm", "harm to others", "abuse", "substance crisis")
# "Not a plan, more like a wish that it would all stop" is not a denial: it is a
# passive wish with no plan stated, and is labelled so.
NO_PLAN = ", no plan stated"
PASSIVE_WISH_NO_PLAN = PASSIVE_WISH + NO_PLAN
_NO_PLAN = re.compile(
    r"\b(?:not?\s(?:a\s|any\s|real\s)*(?:plan|plans|intention|intent)|"
    r"(?:don't|do\snot|didn't|haven't|have\snot)\s(?:have\s|got\s|made\s)?(?:a\s|any\s)?(?:plan|plans)|"
    r"(?:wouldn't|would\snot|won't|will\snot|not\sgoing\sto)\s(?:actually\s|ever\s)?"
    r"(?:act\son\sit|do\sit|do\sanything))\b|"
    r"\b(?:don't|do\snot)\swant\sto\s(?:do\sanything|act\son\sit)\b",
    re.IGNORECASE,
)
# "No intention of hurting myself" is a plain denial: the plan word governs the risk words.
_NO_PLAN_APART = re.compile(f"(?:{_NO_PLAN.pattern})" + r"(?!\s+(?:of|to)\b)", re.IGNORECASE)
_WISHES = (PASSIVE_WISH, SUICIDAL_THOUGHTS)
_ASKING = re.compile(r"\byou(?:r|rself)?\b.*\?|\?.*\byou", re.IGNORECASE)
_FIRST_PERSON = frozenset({"i", "me", "my", "myself", "mine", "i'm", "i'd", "i've", "i'll"})

# Negation cues before a match, within its clause ("I'm not suicidal",
# "no intention of hurting myself"). Pseudo-negations are phrases that contain a
# cue but do not deny: "I wouldn't mind not waking up" is a death wish.
_NEGATION = re.compile(
    r"\b(?:not|no|never|nothing|nobody|none|without|deny|denies|denied|n't|"
    r"don't|doesn't|didn't|won't|wouldn't|isn't|aren't|wasn't|haven't|hasn't|can't|couldn't|cannot)\b"
    r"|n't\b",
    re.IGNORECASE,
)
_PSEUDO_NEGATION = re.compile(
    r"\b(?:wouldn't|would\snot|don't|do\snot)\smind\b|\bnot\s(?:sure|only|just)\b|"
    r"\b(?:don't|do\snot)\sknow\b|\bno\s(?:doubt|matter)\b|\bcan't\s(?:stop|help)\b",
    re.IGNORECASE,
)
# Hedges make a following denial uncertain: "I'm not sure I won't hurt myself".
_HEDGE = re.compile(
    r"\bnot\s(?:sure|certain)\b|\b(?:don't|do\snot)\sknow\s(?:if|whether)\b|\b(?:might|maybe|perhaps)\b|"
    r"\bcan't\s(?:promise|guarantee|say)\b",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(
    r"[,;:—–]|\b(?:but|though|although|however|yet|except|and|so|because|cause)\b", re.IGNORECASE
)
_NEGATION_WORDS = 6  # a cue further back than this many words is about something else

# Risk questions (second person) whose answer is flagged even without risk words:
# "Yes" to "Are you having thoughts of hurting yourself?" is a disclosure.
_QUESTIONS: dict[str, list[str]] = {
    SUICIDAL_THOUGHTS: [
        r"\bsuicid\w*", r"\bkill(?:ing)?\syourself\b", r"\bend(?:ing)?\syour\s(?:own\s)?life\b",
        r"\btak(?:e|ing)\syour\s(?:own\s)?life\b",
    ],
    PASSIVE_WISH: [
        r"\b(?:wish|want)(?:ed)?\sto\sbe\sdead\b", r"\bnot\s(?:being|be)\s(?:here|alive)\b",
        r"\bthoughts?\sof\s(?:death|dying)\b", r"\bnot\swak(?:e|ing)\sup\b",
    ],
    MEANS_OR_PLAN: [r"\ba\splan\b", r"\bhow\syou\s(?:would|might|could)\sdo\sit\b", r"\baccess\sto\b"],
    SELF_HARM: [
        r"\b(?:hurt|harm|cut|burn)(?:ing)?\syourself\b", r"\bself[-\s]?harm\w*",
        # The question's frame survives a misheard verb ("thought subverting yourself").
        r"\bthoughts?\s(?:of\s|about\s)?\w+ing\syourself\b",
    ],
    HARM_TO_OTHERS: [
        r"\b(?:hurt|harm|kill)(?:ing)?\s(?:anyone|someone|somebody|anybody|others|him|her|them)\b",
    ],
    ABUSE: [
        r"\b(?:anyone|someone|he|she|they)\s(?:ever\s)?(?:hurt|hit|touch)(?:s|ing)?\syou\b",
        r"\babus\w*",
    ],
    SUBSTANCE: [r"\b(?:drinking|drugs|alcohol|overdos\w*|relaps\w*|using\s(?:again|drugs|anything))\b"],
}
# Questions where "no" is the worrying answer ("Do you feel safe at home?").
_SAFETY_QUESTIONS = [(ABUSE, re.compile(r"\b(?:feel|are|be)\s(?:\w+\s)?safe\b", re.IGNORECASE))]
_AFFIRM = re.compile(
    r"^\W*(?:yes\b|yeah\b|yep\b|i\s(?:do|am|feel\ssafe)\b|of\scourse\b|definitely\b)", re.IGNORECASE
)
_DENIAL = re.compile(
    r"^\W*(?:no\b|nope\b|nah\b|not\b|never\b|of\scourse\snot|absolutely\snot|definitely\snot|god\sno|"
    r"i(?:'m|\sam)\snot\b|i\s(?:don't|do\snot|haven't|have\snot|wouldn't|would\snever|won't)\b)",
    re.IGNORECASE,
)
_ANSWER_WINDOW_S = 30.0
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")


def _compile(table: dict[str, list[str]]) -> list[tuple[str, re.Pattern]]:
    return [(category, re.compile(p, re.IGNORECASE))
            for category, patterns in table.items() for p in patterns]


_QUESTION_PATTERNS = _compile(_QUESTIONS)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def _is_negated(sentence: str, match_start: int) -> bool:
    """A negation cue in the same clause, a few words before the match."""
    prefix = sentence[:match_start]
    breaks = list(_CLAUSE_BREAK.finditer(prefix))
    if breaks:
        prefix = prefix[breaks[-1].end():]
    prefix = " ".join(prefix.split()[-_NEGATION_WORDS:])
    if _HEDGE.search(prefix):
        return False
    prefix = _PSEUDO_NEGATION.sub(" ", prefix)
    return bool(_NEGATION.search(prefix))


def _benign_spans(words: list[risk_match.Word]) -> dict[str, list[tuple[int, int]]]:
    """Word spans of the everyday idioms in the sentence, by category."""
    spans: dict[str, list[tuple[int, int]]] = {}
    vocabulary = frozenset(w.text for w in words)
    for idiom in risk_match.lexicon().benign:
        for hit in risk_match.find(idiom, words, vocabulary):
            spans.setdefault(idiom.category, []).append((hit.first, hit.last))
    return spans


def _term(hit: risk_match.Hit, sentence: str, words: list[risk_match.Word]) -> str:
    """The sentence's matched words; a misheard match also names the lexicon phrase."""
    said = sentence[words[hit.first].start:words[hit.last - 1].end]
    return f"{said} (heard for: {hit.phrase.plain})" if hit.heard else said


def _hits(sentence: str) -> list[tuple[risk_match.Hit, str, bool]]:
    """(hit, term, negated) for every lexicon phrase in the sentence, idioms left out."""
    words = risk_match.words(sentence)
    benign = _benign_spans(words)
    # A denied plan ("not a plan, more like a wish") must not make the wish a denial.
    unplanned = _NO_PLAN_APART.sub(lambda m: " " * len(m.group(0)), sentence)
    asking = _ASKING.search(sentence) is not None
    found = []
    vocabulary = frozenset(w.text for w in words)
    for phrase in risk_match.lexicon().phrases:
        for hit in risk_match.find(phrase, words, vocabulary):
            if any(a < hit.last and hit.first < b for a, b in benign.get(phrase.category, ())):
                continue
            # "Do you have a plan?" asks; its answer is flagged. "Would they be better off without me?" tells.
            if asking and not any(w.text in _FIRST_PERSON for w in words[hit.first:hit.last]):
                continue
            clause = unplanned if phrase.category in _WISHES else sentence
            negated = _is_negated(clause, words[hit.first].start)
            found.append((hit, _term(hit, sentence, words), negated))
    return found


def _statement_flags(segment: Line, sentence: str, no_plan: bool) -> list[RiskFlag]:
    """One flag per category the sentence touches; negated only if every match is.

    ``no_plan``: this sentence or the one before it says there is no plan, so a
    wish in it is labelled a passive wish with no plan stated, and the denied
    plan is not listed as a denial of its own.
    """
    found: dict[str, tuple[str, bool]] = {}
    for hit, term, negated in _hits(sentence):
        category = hit.phrase.category
        # Keep the first match, unless a later one is not denied: that one matters more.
        if category not in found or (found[category][1] and not negated):
            found[category] = (term, negated)
    if no_plan:
        found = _without_plan(found)
    return [
        RiskFlag(category, segment.start, segment.end, segment.speaker, sentence, negated, term)
        for category, (term, negated) in found.items()
    ]


def _without_plan(found: dict[str, tuple[str, bool]]) -> dict[str, tuple[str, bool]]:
    """Relabel a wish said alongside "no plan": "<wish>, no plan stated", not a denial."""
    wishes = [c for c in _WISHES if c in found and not found[c][1]]
    if not wishes:
        return found
    kept = {c: v for c, v in found.items() if c not in _WISHES and not (c == MEANS_OR_PLAN and v[1])}
    kept.update({c + NO_PLAN: found[c] for c in wishes})
    return kept


def _segment_flags(segment: Line) -> list[RiskFlag]:
    """The statement flags of every sentence of one transcript line."""
    per_sentence, previous = [], ""
    for sentence in _sentences(segment.text):
        no_plan = bool(_NO_PLAN_APART.search(sentence) or _NO_PLAN_APART.search(previous))
        per_sentence.append(_statement_flags(segment, sentence, no_plan))
        previous = sentence
    flags = []
    for here, after in zip(per_sentence, [*per_sentence[1:], []], strict=True):
        # "I don't have a plan. More that I wish I wasn't here.": the wish carries "no plan stated".
        plan_denied = here and all(f.category == MEANS_OR_PLAN and f.negated for f in here)
        if not (plan_denied and any(f.category.endswith(NO_PLAN) for f in after)):
            flags += here
    return flags


def _question(sentence: str) -> tuple[str, str, bool] | None:
    """(category, term, is_safety_question) when a sentence asks about risk, else None."""
    if "?" not in sentence or not re.search(r"\byou(?:r|rself)?\b", sentence, re.IGNORECASE):
        return None
    for category, pattern in _SAFETY_QUESTIONS:
        match = pattern.search(sentence)
        if match:
            return category, match.group(0), True
    for category, pattern in _QUESTION_PATTERNS:
        match = pattern.search(sentence)
        if match:
            return category, match.group(0), False
    return None


def _answer_denies(reply: str, safety_question: bool) -> bool:
    """Does the reply deny the risk? For a safety question that means saying yes."""
    return bool((_AFFIRM if safety_question else _DENIAL).match(reply))


def _answer(segments: Sequence[Line], position: int) -> Line | None:
    """The next segment by someone else (any next one if speakers are unknown)."""
    asker = segments[position]
    for later in segments[position + 1 :]:
        if later.start - asker.end > _ANSWER_WINDOW_S:
            return None
        if later.speaker != asker.speaker or asker.speaker == UNKNOWN_SPEAKER:
            return later
    return None


def _answer_flags(segments: Sequence[Line]) -> list[RiskFlag]:
    flags = []
    for position, segment in enumerate(segments):
        for sentence in _sentences(segment.text):
            asked = _question(sentence)
            answer = _answer(segments, position) if asked else None
            replies = _sentences(answer.text) if answer else []
            if asked and answer is not None and replies:
                category, term, safety = asked
                ambivalent = [f for f in _segment_flags(answer) if f.category.endswith(NO_PLAN)]
                if ambivalent:  # "Not a plan, more like a wish…" answers with a wish, not a denial
                    flags.append(replace(ambivalent[0], context=sentence))
                    continue
                flags.append(RiskFlag(
                    category, answer.start, answer.end, answer.speaker, replies[0],
                    _answer_denies(replies[0], safety), term, context=sentence,
                ))
    return flags


def find_risk_flags(segments: Iterable[Any]) -> list[RiskFlag]:
    """Sentences with risk language, in time order.

    Categories: passive wish, suicidal thoughts, means or plan, preparatory acts,
    hopelessness, self-harm, harm to others, abuse, substance crisis. Each
    sentence is matched against the lexicon (risk_lexicon.toml), which includes
    passive and indirect wording ("everyone would be better off without me") and
    tolerates one misheard word in a long phrase ("mader off without me"; the
    flag's ``term`` then names the phrase it was heard for). Denials are kept
    with ``negated=True``; a wish said with "no plan" is labelled "<category>, no
    plan stated", not a denial. The first sentence of the reply to a clinician's
    risk question ("Are you having thoughts of hurting yourself?") is flagged
    too, negated when it opens with a denial, with the question in ``context``;
    the question itself is not flagged unless it speaks in the first person.
    Everyday idioms ("killing time", "that really touched me") are not flagged.
    """
    segs = transcript_lines(segments)
    # An answer's flag carries the question, so it wins over the same statement's flag.
    flags = _answer_flags(segs)
    seen = {(f.start, f.quote, f.category) for f in flags}
    flags += [f for segment in segs for f in _segment_flags(segment)
              if (f.start, f.quote, f.category) not in seen]
    return sorted(flags, key=lambda f: (f.start, f.category))


