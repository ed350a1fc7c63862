"""Risk-language flags: a screening aid for the clinician, not an assessment.

They err towards flagging: a denial ("I'm not suicidal") is flagged with
``negated=True`` rather than dropped, and so is an answer to a risk question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from appliance.notes.facts import UNKNOWN_SPEAKER, Line, transcript_lines
from appliance.transcript import RiskFlag

# --- risk language ------------------------------------------------------------------

SUICIDE, SELF_HARM, HARM_TO_OTHERS, ABUSE, SUBSTANCE = (
    "suicide", "self-harm", "harm to others", "abuse", "substance crisis",
)


_ME = r"(?:myself|my\s?self)"
_OTHER = (
    r"(?:him|her|them|someone|somebody|anyone|people|everyone|"
    r"my\s(?:wife|husband|partner|boyfriend|girlfriend|boss|manager|mother|father|mom|mum|dad|"
    r"kids?|children|son|daughter|brother|sister|neighbou?r|ex|roommate|coworker|colleague))"
)
_FAMILY = r"(?:he|she|they|my\s\w+|dad|mom|mum|father|mother|partner|husband|wife|boyfriend|girlfriend)"

# Statements, matched case-insensitively against each sentence. Clinical wording
# first, then the everyday and indirect ways people say the same thing.
_STATEMENTS: dict[str, list[str]] = {
    SUICIDE: [
        r"\bsuicid\w*",
        r"\bkill(?:ing|ed)?\s" + _ME,
        r"\b(?:hang|shoot|drown|poison)(?:ing|ed)?\s" + _ME,
        r"\bend(?:ing)?\s(?:my\s(?:own\s)?life|it\sall|things)\b",
        r"\btak(?:e|ing)\smy\s(?:own\s)?life\b",
        (r"\bbetter\soff\s(?:dead|without\sme|if\si\s(?:was|were)(?:n't|\snot)\s(?:here|around|alive)"
         r"|if\si\s(?:died|was\sgone|were\sgone))"),
        r"\b(?:want|wanted|wanna)\sto\sdie\b",
        r"\bwish(?:ed)?\si\s(?:was|were|had\sbeen|could\sbe)\sdead\b",
        r"\bwish(?:ed)?\si\s(?:was|were)(?:n't|\snot)\s(?:alive|here|around|born)\b",
        r"\bwish(?:ed)?\si\s(?:could\s)?(?:die|disappear|just\sdisappear|never\swake\sup)\b",
        (r"\b(?:don't|do\snot|didn't|no\slonger)\swant\sto"
         r"\s(?:wake\sup|be\salive|live|be\shere|exist|go\son)\b"),
        r"\bnot\s(?:wak(?:e|ing)\sup|be(?:ing)?\s(?:here|around|alive)\s(?:any\s?more|much\slonger))\b",
        r"\b(?:go\sto\ssleep|fall\sasleep)\sand\snot\swake\sup\b",
        r"\bwouldn't\smind\s(?:dying|being\sdead|not\s(?:waking|being))",
        r"\bno\s(?:reason|point)\s(?:to|in)\s(?:live|living|go(?:ing)?\son|be(?:ing)?\shere)\b",
        r"\b(?:can't|cannot|can\snot)\s(?:go\son|do\sthis\sany\s?more|take\s(?:it|this)\sany\s?more)\b",
        r"\bno\sway\sout\b",
        r"\b(?:nobody|no\sone|no-one)\swould\s(?:miss\sme|care|notice)\b",
        r"\bi(?:'m|\sam)\s(?:just\s)?(?:a|such\sa)\sburden\b",
        r"\b(?:feel|feeling|felt)\slike\s(?:a|such\sa|nothing\sbut\sa)\sburden\b",
        r"\bburden\s(?:to|on)\s(?:everyone|everybody|my\sfamily|them|you|people)\b",
        r"\b(?:take|took|swallow(?:ed)?)\s(?:all\s)?(?:my|the|a\sbunch\sof|a\slot\sof)\spills\b",
        r"\bjump(?:ing)?\s(?:off|in\sfront\sof)\b",
        r"\bstep(?:ping)?\sin\sfront\sof\sa\s(?:train|bus|car|truck)\b",
    ],
    SELF_HARM: [
        r"\bself[-\s]?harm\w*",
        r"\b(?:hurt|harm|burn|hit|punch|scratch|starve|punish)(?:ing|ed|s)?\s" + _ME,
        r"\bcut(?:ting|s)?\s(?:" + _ME + r"|my\s(?:arms?|wrists?|legs?|thighs?|skin|stomach))",
        r"\b(?:been|started|start|stopped|stop|urges?\sto|go\sback\sto|went\sback\sto|still)\scutting\b",
        r"\bbang(?:ing|ed)?\smy\shead\b",
    ],
    HARM_TO_OTHERS: [
        r"\bhomicid\w*",
        r"\b(?:hurt|kill|stab|shoot|strangle|choke|murder|attack|harm)(?:s|ing|ed)?\s" + _OTHER + r"\b",
        r"\bbeat(?:ing)?\s(?:him|her|them|someone|somebody)\sup\b",
        r"\bwant\s(?:him|her|them)\sdead\b",
        r"\bmake\s(?:him|her|them)\spay\b",
        r"\b(?:get|got|buy|bought)\sa\s(?:gun|knife|weapon)\b",
    ],
    ABUSE: [
        r"\babus(?:e|ed|es|ing|ive|er)\b",
        (r"\b(?:hit|hits|hitting|beat|beats|beating|kick(?:s|ed)?|slap(?:s|ped)?|punch(?:es|ed)?"
         r"|chok(?:es|ed)|shov(?:es|ed)|push(?:es|ed)|grab(?:s|bed))\s(?:me|us)\b"),
        r"\b" + _FAMILY + r"\s(?:hits|hit|beats|beat)\b",
        r"\btouch(?:ed|es|ing)?\sme\b",
        r"\bmolest\w*",
        r"\brap(?:e|ed|es|ing|ist)\b",
        r"\bsexual(?:ly)?\s(?:assault|abuse|abused|assaulted)\b",
        r"\bassault(?:ed|s)?\b",
        r"\bthreaten(?:s|ed|ing)?\s(?:me|to\s(?:kill|hurt|leave|take))\b",
        r"\b(?:afraid|scared|frightened)\s(?:of\s(?:him|her|them)|to\sgo\shome)\b",
        r"\bnot\ssafe\s(?:at\shome|with\s(?:him|her|them))\b",
        r"\block(?:s|ed)?\sme\s(?:in|out)\b",
    ],
    SUBSTANCE: [
        r"\boverdos\w*",
        r"\b(?:OD|OD'd|ODed)\b",
        r"\b(?:drinking|drunk|high|using|wasted)\s(?:every|each)\s(?:day|night|morning)\b",
        r"\b(?:can't|cannot|couldn't|can\snot)\sstop\s(?:drinking|using|taking)\b",
        r"\brelaps\w*",
        r"\bwithdrawals?\s(?:symptoms|shakes|seizures?)\b",
        r"\b(?:going\sthrough|in|having|bad|alcohol|opioid|opiate|heroin|benzo)\swithdrawals?\b",
        r"\bdetox\w*",
        r"\b(?:using|drinking|shooting\sup)\sagain\b",
        r"\b(?:started|start)\s(?:using|drinking)\sagain\b",
        r"\bback\son\s(?:the\s)?(?:drugs|heroin|meth|pills|coke|booze|bottle)\b",
        r"\bblack(?:ed)?\s?out\b",
        r"\bshooting\sup\b",
        r"\b(?:took|taking|popped|popping)\s(?:too\smany|handfuls\sof|a\shandful\sof)\spills\b",
        r"\b(?:substance|alcohol|drug)\sabuse\b",
    ],
}

# Everyday idioms that contain a risk pattern; a match inside one is not flagged.
_BENIGN: dict[str, list[str]] = {
    SELF_HARM: [r"\bcut(?:ting)?\s" + _ME + r"\soff\b"],
    HARM_TO_OTHERS: [r"\bkill(?:ing|ed)?\s(?:some\s)?time\b", r"\bkill(?:ing|ed)\sit\b"],
    ABUSE: [
        (r"\b(?:it|that|this|what\s\w+\ssaid|(?:his|her|your|their)\s(?:words|letter|gesture|kindness))"
         r"\s(?:really\s|deeply\s|truly\s|just\s)?touched\sme\b"),
        (r"\b(?:it|that|this|reality|the\s(?:idea|thought|realization|news))"
         r"\s(?:really\s|just\s|finally\s|suddenly\s)?hit\sme\b"),
        r"\bhit\sme\sup\b",
        r"\b(?:substance|alcohol|drug|opioid)\sabuse\b",  # flagged as substance crisis instead
    ],
}

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
    SUICIDE: [
        r"\bsuicid\w*", r"\bkill(?:ing)?\syourself\b", r"\bend(?:ing)?\syour\s(?:own\s)?life\b",
        r"\b(?:wish|want)(?:ed)?\sto\sbe\sdead\b", r"\bnot\s(?:being|be)\s(?:here|alive)\b",
        r"\bthoughts?\sof\s(?:death|dying)\b",
    ],
    SELF_HARM: [r"\b(?:hurt|harm|cut|burn)(?:ing)?\syourself\b", r"\bself[-\s]?harm\w*"],
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


_STATEMENT_PATTERNS = _compile(_STATEMENTS)
_QUESTION_PATTERNS = _compile(_QUESTIONS)
_BENIGN_PATTERNS = {c: [re.compile(p, re.IGNORECASE) for p in ps] for c, ps in _BENIGN.items()}


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


def _is_benign(sentence: str, category: str, match: re.Match) -> bool:
    """True when the match lies inside a benign idiom of its category."""
    return any(
        idiom.start() < match.end() and match.start() < idiom.end()
        for pattern in _BENIGN_PATTERNS.get(category, ())
        for idiom in pattern.finditer(sentence)
    )


def _statement_flags(segment: Line, sentence: str) -> list[RiskFlag]:
    """One flag per category the sentence touches; negated only if every match is."""
    found: dict[str, tuple[str, bool]] = {}
    for category, pattern in _STATEMENT_PATTERNS:
        for match in pattern.finditer(sentence):
            if _is_benign(sentence, category, match):
                continue
            negated = _is_negated(sentence, match.start())
            # Keep the first match, unless a later one is not denied: that one matters more.
            if category not in found or (found[category][1] and not negated):
                found[category] = (match.group(0), negated)
    return [
        RiskFlag(category, segment.start, segment.end, segment.speaker, sentence, negated, term)
        for category, (term, negated) in found.items()
    ]


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
                flags.append(RiskFlag(
                    category, answer.start, answer.end, answer.speaker, replies[0],
                    _answer_denies(replies[0], safety), term, context=sentence,
                ))
    return flags


def find_risk_flags(segments: Iterable[Any]) -> list[RiskFlag]:
    """Sentences with risk language (suicide, self-harm, harm to others, abuse,
    substance crisis), in time order.

    Each sentence is matched against a clinical vocabulary that includes passive
    and indirect wording ("everyone would be better off without me", "I wouldn't
    mind not waking up"). Denials are kept with ``negated=True``. The first
    sentence of the reply to a clinician's risk question ("Are you having
    thoughts of hurting yourself?") is flagged too, negated when it opens with a
    denial, with the question in ``context``. A few benign idioms ("killing
    time", "that really touched me") are not flagged.
    """
    segs = transcript_lines(segments)
    flags = [flag for segment in segs for sentence in _sentences(segment.text)
             for flag in _statement_flags(segment, sentence)]
    seen = {(f.start, f.quote, f.category) for f in flags}
    flags += [f for f in _answer_flags(segs) if (f.start, f.quote, f.category) not in seen]
    return sorted(flags, key=lambda f: (f.start, f.category))


