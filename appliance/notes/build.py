"""Session facts and the draft note: silences, metrics, bookmarks, risk-language flags.

Inputs are transcript segments: dicts or objects with ``start``, ``end`` (seconds),
``speaker`` and ``text``. Everything here is plain text processing (stdlib only);
nothing leaves the device.

Risk-language flags are a screening aid for the clinician, not an assessment.
They err towards flagging: a denial ("I'm not suicidal") is flagged with
``negated=True`` rather than dropped, and so is an answer to a risk question.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The result types live with the transcript result; imported here, where they are made.
from appliance.transcript import Metrics, RiskFlag, Silence

UNKNOWN_SPEAKER = "Unknown"
TEMPLATES = ("SOAP", "DAP", "BIRP")
DRAFT_BANNER = "DRAFT — not signed"


# --- segments ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    index: int
    start: float
    end: float
    speaker: str
    text: str


def _get(segment: Any, name: str, default: Any = None) -> Any:
    if isinstance(segment, Mapping):
        return segment.get(name, default)
    return getattr(segment, name, default)


def _segments(segments: Iterable[Any]) -> list[_Segment]:
    """Validated segments in time order, remembering each one's index in the input."""
    result = []
    for index, segment in enumerate(segments):
        if _get(segment, "start") is None or _get(segment, "end") is None:
            raise ValueError(f"segment {index} needs a start and an end time in seconds")
        start, end = float(_get(segment, "start")), float(_get(segment, "end"))
        if end < start:
            raise ValueError(f"segment {index} ends before it starts: start {start}, end {end}")
        speaker = _get(segment, "speaker") or UNKNOWN_SPEAKER
        result.append(_Segment(index, start, end, str(speaker), str(_get(segment, "text", "") or "")))
    return sorted(result, key=lambda s: (s.start, s.end))


def _speech_spans(segments: Sequence[_Segment]) -> list[tuple[float, float]]:
    """The union of segment times, sorted."""
    spans: list[tuple[float, float]] = []
    for segment in segments:
        if spans and segment.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], segment.end))
        else:
            spans.append((segment.start, segment.end))
    return spans


# --- silences ----------------------------------------------------------------------


def _gaps(segments: Sequence[_Segment], duration_s: float) -> list[Silence]:
    """Every gap between speech, including before the first and after the last word."""
    cursor, gaps = 0.0, []
    for start, end in _speech_spans(segments):
        if start > cursor:
            gaps.append(Silence(cursor, min(start, duration_s)))
        cursor = max(cursor, end)
    if duration_s > cursor:
        gaps.append(Silence(cursor, duration_s))
    return [g for g in gaps if g.end > g.start]


def find_silences(segments: Iterable[Any], duration_s: float, threshold_s: float) -> list[Silence]:
    """Gaps in speech longer than ``threshold_s``, the recording's start and end included."""
    if threshold_s <= 0:
        raise ValueError(f"threshold_s must be > 0 seconds, got {threshold_s}")
    if duration_s < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    return [g for g in _gaps(_segments(segments), duration_s) if g.duration > threshold_s]


# --- metrics -----------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def _word_count(text: str) -> int:
    return len(_WORD.findall(text))


def compute_metrics(segments: Iterable[Any], duration_s: float, silences: Sequence[Silence]) -> Metrics:
    """Talk time and share per speaker, speaking rates, turns, words and silences."""
    segs = _segments(segments)
    talk = {name: sum(e - s for s, e in _speech_spans([g for g in segs if g.speaker == name]))
            for name in dict.fromkeys(g.speaker for g in segs)}
    total_talk = sum(talk.values())
    words = {name: sum(_word_count(g.text) for g in segs if g.speaker == name) for name in talk}
    rates = {name: _rate(words[name], talk[name]) for name in talk}
    rates["overall"] = _rate(sum(words.values()), total_talk)
    gaps = _gaps(segs, duration_s)
    longest = max([g.duration for g in gaps] + [s.duration for s in silences] + [0.0])
    return Metrics(
        duration_s=float(duration_s),
        talk_time_s={name: round(t, 2) for name, t in talk.items()},
        talk_share={name: (t / total_talk if total_talk else 0.0) for name, t in talk.items()},
        longest_silence_s=round(longest, 2),
        words_per_minute=rates,
        turns=_turns(segs),
        word_count=sum(words.values()),
        words=words,
        silence_count=len(silences),
        silence_total_s=round(sum(s.duration for s in silences), 2),
    )


def _rate(words: int, seconds: float) -> float:
    return round(60.0 * words / seconds, 1) if seconds > 0 else 0.0


def _turns(segments: Sequence[_Segment]) -> int:
    speakers = [s.speaker for s in segments]
    return sum(1 for i, name in enumerate(speakers) if i == 0 or name != speakers[i - 1])


# --- bookmarks ---------------------------------------------------------------------

_SNIPPET_CHARS = 120


def align_bookmarks(bookmarks: Iterable[float], segments: Iterable[Any]) -> list[dict]:
    """Each bookmark with the segment it points at: the one under the mark, else the
    last one before it (the clinician presses after hearing something).

    Returns ``{"offset", "segment_index", "speaker", "snippet"}`` dicts in time
    order; ``segment_index`` is the position in ``segments`` as given, or None
    (with an empty snippet) for a mark before any speech.
    """
    segs = _segments(segments)
    aligned = []
    for offset in sorted(float(b) for b in bookmarks):
        if offset < 0:
            raise ValueError(f"bookmark offsets must be >= 0 seconds, got {offset}")
        before = [s for s in segs if s.start <= offset]
        target = max(before, key=lambda s: (s.start, s.end)) if before else None
        aligned.append({
            "offset": offset,
            "segment_index": target.index if target else None,
            "speaker": target.speaker if target else None,
            "snippet": _snippet(target.text) if target else "",
        })
    return aligned


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1].rstrip() + "…"


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


def _statement_flags(segment: _Segment, sentence: str) -> list[RiskFlag]:
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


def _answer(segments: Sequence[_Segment], position: int) -> _Segment | None:
    """The next segment by someone else (any next one if speakers are unknown)."""
    asker = segments[position]
    for later in segments[position + 1 :]:
        if later.start - asker.end > _ANSWER_WINDOW_S:
            return None
        if later.speaker != asker.speaker or asker.speaker == UNKNOWN_SPEAKER:
            return later
    return None


def _answer_flags(segments: Sequence[_Segment]) -> list[RiskFlag]:
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
    segs = _segments(segments)
    flags = [flag for segment in segs for sentence in _sentences(segment.text)
             for flag in _statement_flags(segment, sentence)]
    seen = {(f.start, f.quote, f.category) for f in flags}
    flags += [f for f in _answer_flags(segs) if (f.start, f.quote, f.category) not in seen]
    return sorted(flags, key=lambda f: (f.start, f.category))


# --- draft notes ---------------------------------------------------------------------

# Where the machine-written facts go. They are what the recording shows (times,
# talk share, silences, the words flagged), not the clinician's reading of them:
# SOAP's Objective, DAP's Data and BIRP's Behavior are the sections for that.
# Every other section is the clinician's to write and starts as a bracketed prompt.
_ASSESS = "[Your clinical impression, progress toward goals and risk assessment.]"
_PLAN = "[Next steps, homework, referrals, safety plan if needed, next session.]"
_SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "SOAP": [
        ("subjective", "Subjective",
         "[Client's reported concerns, mood and experience since the last session, in their words.]"),
        ("objective", "Objective", "[Add your observations: appearance, affect, behaviour, mental status.]"),
        ("assessment", "Assessment", _ASSESS),
        ("plan", "Plan", _PLAN),
    ],
    "DAP": [
        ("data", "Data", "[Add what the client reported and what you observed.]"),
        ("assessment", "Assessment", _ASSESS),
        ("plan", "Plan", _PLAN),
    ],
    "BIRP": [
        ("behavior", "Behavior", "[Add the client's presentation, mood and what they reported.]"),
        ("intervention", "Intervention", "[The interventions and techniques you used.]"),
        ("response", "Response", "[How the client responded to the interventions.]"),
        ("plan", "Plan", _PLAN),
    ],
}
_AUTO_SECTION = {"SOAP": "objective", "DAP": "data", "BIRP": "behavior"}


def _clock(seconds: float) -> str:
    """m:ss or h:mm:ss."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _when(session_date: dt.date | dt.datetime | str) -> str:
    if isinstance(session_date, dt.datetime):
        return session_date.strftime("%Y-%m-%d %H:%M")
    if isinstance(session_date, dt.date):
        return session_date.isoformat()
    return str(session_date)


def _talk_lines(metrics: Metrics) -> list[str]:
    shares = ", ".join(f"{name} {_clock(metrics.talk_time_s[name])} ({share:.0%})"
                       for name, share in metrics.talk_share.items())
    rates = ", ".join(f"{name} {wpm:.0f}"
                      for name, wpm in metrics.words_per_minute.items() if name != "overall")
    return [
        f"Talk time: {shares or 'no speech detected'}.",
        f"Speaker turns: {metrics.turns}. Words: {metrics.word_count}"
        + (f" (words per minute: {rates})." if rates else "."),
    ]


def _silence_lines(metrics: Metrics, silences: Sequence[Silence], threshold_s: float | None) -> list[str]:
    over = f" over {threshold_s:g} s" if threshold_s is not None else ""
    lines = [(f"Silences{over}: {len(silences)}, {sum(s.duration for s in silences):.0f} s in all; "
              f"longest silence {metrics.longest_silence_s:.0f} s.")]
    lines += [f"  - {_clock(s.start)}–{_clock(s.end)} ({s.duration:.0f} s)" for s in silences]
    return lines


def _flag_lines(flags: Sequence[RiskFlag] | None) -> list[str]:
    if flags is None:
        return ["Risk-language screen: turned off."]
    if not flags:
        return ["Risk-language flags: none found (an automatic word screen, not a risk assessment)."]
    lines = [f"Risk-language flags ({len(flags)}; automatic, check each against the transcript):"]
    for flag in flags:
        kind = f"{flag.category}, denial" if flag.negated else flag.category
        line = f"  - {_clock(flag.start)} {flag.speaker} ({kind}): “{flag.quote}”"
        if flag.context:
            line += f" — in answer to “{flag.context}”"
        lines.append(line)
    return lines


def _bookmark_lines(bookmarks: Sequence[Any]) -> list[str]:
    if not bookmarks:
        return []
    lines = [f"Bookmarks ({len(bookmarks)}):"]
    for mark in bookmarks:
        if isinstance(mark, Mapping):
            snippet = f" — {mark.get('speaker')}: “{mark['snippet']}”" if mark.get("snippet") else ""
            lines.append(f"  - {_clock(float(mark['offset']))}{snippet}")
        else:
            lines.append(f"  - {_clock(float(mark))}")
    return lines


def _facts(duration_s, metrics, silences, flags, bookmarks, threshold_s) -> str:
    lines = [f"Recorded duration: {_clock(duration_s)}."]
    lines += _talk_lines(metrics)
    lines += _silence_lines(metrics, silences, threshold_s)
    lines += _flag_lines(flags)
    lines += _bookmark_lines(bookmarks)
    return "\n".join(lines)


def build_draft_note(
    template: str,
    *,
    session_date: dt.date | dt.datetime | str,
    duration_s: float,
    metrics: Metrics,
    silences: Sequence[Silence],
    flags: Sequence[RiskFlag] | None,
    bookmarks: Sequence[Any],
    speakers: Sequence[str],
    clinician: str | None = None,
    silence_threshold_s: float | None = None,
) -> dict:
    """A draft note in the practice's template (SOAP, DAP or BIRP).

    The objective facts (date, duration, talk share, silences, risk-language
    flags with times and quotes, bookmarks) fill the template's factual section:
    SOAP Objective, DAP Data, BIRP Behavior (``"auto": True``). The clinical
    sections hold a bracketed prompt (also under ``"prompt"``) for the
    clinician. ``flags=None`` means the screen was turned off. ``bookmarks`` are
    :func:`align_bookmarks` dicts or plain offsets. The note stays
    ``"status": "draft"`` until the clinician signs it.
    """
    name = template.upper() if isinstance(template, str) else template
    if name not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    facts = _facts(duration_s, metrics, silences, flags, bookmarks, silence_threshold_s)
    sections = []
    for key, title, prompt in _SECTIONS[name]:
        auto = key == _AUTO_SECTION[name]
        sections.append({
            "key": key, "title": title, "text": facts if auto else prompt, "auto": auto, "prompt": prompt,
        })
    header = " · ".join(part for part in (
        f"{name} session note",
        _when(session_date),
        _clock(duration_s),
        f"Clinician: {clinician}" if clinician else "",
        f"Speakers: {', '.join(speakers)}" if speakers else "",
    ) if part)
    return {
        "template": name, "status": "draft", "header": header, "banner": DRAFT_BANNER, "sections": sections,
    }


def _banner(note: Mapping) -> str:
    if note.get("status") == "signed":
        who, when = note.get("signed_by", ""), note.get("signed_at", "")
        parts = ("Signed", f"by {who}" if who else "", f"on {when}" if when else "")
        return " ".join(part for part in parts if part)
    return DRAFT_BANNER


def _section_body(section: Mapping) -> str:
    text = section.get("text", "").strip()
    prompt = section.get("prompt", "")
    if section.get("auto") and prompt and prompt not in text:
        text = f"{text}\n{prompt}" if text else prompt
    return text or prompt


def note_to_text(note: Mapping) -> str:
    """Plain-text export: banner, header, then each section under its title."""
    banner = _banner(note)
    lines = [banner.upper() if note.get("status") != "signed" else banner, note.get("header", ""), ""]
    for section in note.get("sections", []):
        lines += [section["title"], "-" * len(section["title"]), _section_body(section), ""]
    return "\n".join(lines).rstrip() + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def md_escape(text: str) -> str:
    """Escape Markdown and HTML specials so client and transcript words stay words in any viewer."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _md_body(text: str) -> str:
    """Lines become paragraphs, "- " lines list items; blank lines keep them apart."""
    blocks: list[str] = []
    for line in text.splitlines():
        item = line.lstrip().startswith("- ")
        rendered = "- " + md_escape(line.lstrip()[2:]) if item else md_escape(line.strip())
        if item and blocks and blocks[-1].startswith("- "):
            blocks[-1] += "\n" + rendered
        else:
            blocks.append(rendered)
    return "\n\n".join(blocks)


def note_to_markdown(note: Mapping) -> str:
    """Markdown export; transcript text is escaped so it cannot inject markup."""
    title = md_escape(note.get("header", "Session note"))
    lines = [f"# {title}", "", f"> **{md_escape(_banner(note))}**", ""]
    for section in note.get("sections", []):
        lines += [f"## {md_escape(section['title'])}", "", _md_body(_section_body(section)), ""]
    return "\n".join(lines).rstrip() + "\n"
