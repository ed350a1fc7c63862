"""Moments to review: where the client may have confronted or withdrawn, and whether a repair followed.

Cues for the clinician's own review, never findings. :func:`candidates` takes a
transcript and the speaker label of the clinician's lines (the web page works it
out with :func:`appliance.clients.lines.identify`, which sits a layer above and
also names the client); the client is the one other named speaker, or the
``client`` the caller names. Pure; nothing stored. The rules (the README says the same):

* confrontation: a client line with a phrase of rupture_lexicon.toml's
  ``[confrontation]`` list ("you don't understand", "that's not what I said"), or a
  ``[feeling]`` phrase ("I was annoyed") in a statement that points at the clinician
  ("… when you said that"); negated or reported speech does not count;
* withdrawal: a ``[withdrawal]`` phrase ("I don't want to talk about it"), or a
  sharp drop in the client's turn length after a clinician intervention: the
  clinician's turn has at least :data:`MIN_INTERVENTION_WORDS` words and is not a
  closed question, the client's turn before it had at least their median length,
  and the client's next :data:`DROP_TURNS` turns each have fewer than
  :data:`DROP_SHARE` of it; the client's median turn must be at least
  :data:`MIN_MEDIAN_WORDS` words, and the session must go on after the drop
  (closing exchanges are short by nature);
* silence after interpretation: a clinician line with an ``[interpretation]``
  phrase ("I wonder if", "maybe part of you") followed by at least
  :data:`SILENCE_S` seconds without speech; the moment is the client's next line;
* repair: within the next :data:`REPAIR_TURNS` clinician turns after a moment, a
  clinician line with a ``[repair]`` phrase ("I'm sorry", "you're right", "thank you
  for telling me"), not sympathy ("sorry to hear that").

One moment per episode: a moment within :data:`EPISODE_TURNS` client turns of the
previous one is the same episode and is not listed again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from appliance.notes import rupture_words as rw
from appliance.notes.facts import UNKNOWN_SPEAKER
from appliance.transcript import Segment, TranscriptResult

CONFRONTATION = "confrontation"
WITHDRAWAL = "withdrawal"
SILENCE = "silence after interpretation"
# A clinician turn this long is an intervention; shorter ones ("Mm.", "Go on.") are not.
MIN_INTERVENTION_WORDS = 8
# Below this median the client answers briefly all session: a drop means nothing.
MIN_MEDIAN_WORDS = 10
DROP_SHARE = 0.3
DROP_TURNS = 2
# Turn gaps run 0.5 to 1.5 s in conversation; the transcript's silences start at 2 s.
SILENCE_S = 5.0
REPAIR_TURNS = 3
EPISODE_TURNS = 2

NO_LINES = "This session has no transcript lines."
NO_CLINICIAN = ("No line of this transcript is labelled as yours (\u201c{name}\u201d), so no "
                "intervention can be told from the client's words. Enrolling your voice "
                "(holdnote enroll-voice) labels your lines in later transcripts.")
NO_CLIENT = "Only you speak in this transcript: there are no client lines to look at."
CROWDED = ("More than one person besides you speaks, so the client's lines cannot be told "
           "apart.")


@dataclass(frozen=True)
class Moment:
    """A moment to look at: the client's line, what came before it, and any repair after."""

    kind: str  # CONFRONTATION, WITHDRAWAL or SILENCE
    start: float  # the client's line start (a line start of the transcript)
    quote: str
    trigger_start: float | None  # the clinician line before it
    repair_start: float | None = None
    repair_quote: str | None = None
    trigger_quote: str | None = None


@dataclass(frozen=True)
class Unavailable:
    """Why no moment can be looked for in a session, in words for the page."""

    reason: str


@dataclass(frozen=True)
class _Turn:
    """Consecutive lines of one speaker."""

    speaker: str
    lines: tuple[Segment, ...]

    @property
    def start(self) -> float:
        return self.lines[0].start

    @property
    def end(self) -> float:
        return self.lines[-1].end

    @functools.cached_property
    def text(self) -> str:
        return " ".join(line.text.strip() for line in self.lines)

    @functools.cached_property
    def length(self) -> int:  # read several times per turn by the drop rule
        return len(rw.words(self.text))


def unavailable(result: TranscriptResult, clinician: str,
                client: str | None = None) -> Unavailable | None:
    """Why moments cannot be looked for in ``result``, or None when they can."""
    names = [name for name in result.speakers if name != UNKNOWN_SPEAKER]
    if not result.segments:
        return Unavailable(NO_LINES)
    if clinician not in names:
        return Unavailable(NO_CLINICIAN.format(name=clinician))
    others = [name for name in names if name != clinician]
    if client is not None:
        others = [client] if client in others else []
    if not others:
        return Unavailable(NO_CLIENT)
    return Unavailable(CROWDED) if len(others) > 1 else None


def candidates(result: TranscriptResult, clinician: str,
               client: str | None = None) -> tuple[Moment, ...]:
    """The moments to review in ``result``, in order; none when :func:`unavailable` says why."""
    if unavailable(result, clinician, client) is not None:
        return ()
    if client is None:
        client = next(n for n in result.speakers if n not in (clinician, UNKNOWN_SPEAKER))
    turns = _turns(result.segments, (clinician, client))
    found = _phrase_moments(turns, client) + _drops(turns, client) + _silences(turns, client)
    return tuple(_with_repair(m, turns, client) for m in _one_per_episode(found, turns, client))


def _turns(segments: Sequence[Segment], speakers: tuple[str, str]) -> list[_Turn]:
    """The lines of the two speakers as turns; anyone else's lines are left out."""
    turns: list[_Turn] = []
    for line in segments:
        if line.speaker not in speakers:
            continue
        if turns and turns[-1].speaker == line.speaker:
            turns[-1] = _Turn(line.speaker, (*turns[-1].lines, line))
        else:
            turns.append(_Turn(line.speaker, (line,)))
    return turns


def _trigger(turns: list[_Turn], index: int) -> _Turn | None:
    """The clinician turn right before turn ``index``."""
    return turns[index - 1] if index > 0 else None


def _moment(kind: str, line: Segment, turns: list[_Turn], index: int) -> Moment:
    before = _trigger(turns, index)
    return Moment(kind, line.start, line.text.strip(), before.start if before else None,
                  trigger_quote=before.text if before else None)


def _phrase_moments(turns: list[_Turn], client: str) -> list[Moment]:
    """Client lines with a confrontation, feeling or withdrawal phrase."""
    found = []
    for index, turn in enumerate(turns):
        if turn.speaker != client:
            continue
        for line in turn.lines:
            kind = line_kind(line.text)
            if kind is not None:
                found.append(_moment(kind, line, turns, index))
                break
    return found


def line_kind(text: str, lex: rw.Lexicon | None = None) -> str | None:
    """CONFRONTATION or WITHDRAWAL when a client line says so (see the module's rules), else None."""
    lex = lex or rw.lexicon()
    for sentence in rw.sentences(text):
        if rw.hits(sentence, lex.confrontation, lex):
            return CONFRONTATION
        if (not sentence.question and rw.hits(sentence, lex.feeling, lex)
                and any(t.find(sentence.words) for t in lex.targets)):
            return CONFRONTATION
        if rw.hits(sentence, lex.withdrawal, lex):
            return WITHDRAWAL
    return None


def _drops(turns: list[_Turn], client: str) -> list[Moment]:
    """Sharp drops in the client's turn length after an intervention (see the module's rules)."""
    mine = [i for i, t in enumerate(turns) if t.speaker == client]
    if not mine:
        return []
    typical = median(turns[i].length for i in mine)
    if typical < MIN_MEDIAN_WORDS:
        return []
    found = []
    for k, i in enumerate(mine[:-1]):
        after = mine[k + 1:k + 1 + DROP_TURNS]
        go_on = len(mine) > k + 1 + DROP_TURNS
        intervention = turns[after[0] - 1]
        if (go_on and turns[i].length >= typical and intervention.speaker != client
                and intervention.length >= MIN_INTERVENTION_WORDS
                and not rw.closed_question(intervention.text)
                and all(turns[j].length < DROP_SHARE * typical for j in after)):
            found.append(_moment(WITHDRAWAL, turns[after[0]].lines[0], turns, after[0]))
    return found


def _silences(turns: list[_Turn], client: str) -> list[Moment]:
    """The client's line after an interpretation followed by a long silence."""
    lex = rw.lexicon()
    found = []
    for index, turn in enumerate(turns[:-1]):
        if turn.speaker == client or turns[index + 1].start - turn.end < SILENCE_S:
            continue
        last = turn.lines[-1].text
        if not any(rw.hits(s, lex.interpretation, lex) for s in rw.sentences(last)):
            continue
        reply = next((j for j in range(index + 1, len(turns)) if turns[j].speaker == client),
                     None)
        if reply is not None:
            moment = _moment(SILENCE, turns[reply].lines[0], turns, reply)
            found.append(Moment(SILENCE, moment.start, moment.quote, turn.lines[-1].start,
                                trigger_quote=last.strip()))
    return found


_PRIORITY = {CONFRONTATION: 0, SILENCE: 1, WITHDRAWAL: 2}


def _one_per_episode(found: list[Moment], turns: list[_Turn], client: str) -> list[Moment]:
    """The moments in order, one a line (the strongest kind) and one an episode."""
    order = {line.start: n for n, t in enumerate(t for t in turns if t.speaker == client)
             for line in t.lines}
    kept: list[Moment] = []
    for moment in sorted(found, key=lambda m: (m.start, _PRIORITY[m.kind])):
        if kept and order[moment.start] - order[kept[-1].start] < EPISODE_TURNS:
            continue
        kept.append(moment)
    return kept


def _with_repair(moment: Moment, turns: list[_Turn], client: str) -> Moment:
    """The moment with the first repair line among the next clinician turns, if any."""
    lex = rw.lexicon()
    after = [t for t in turns if t.start > moment.start and t.speaker != client][:REPAIR_TURNS]
    for turn in after:
        for line in turn.lines:
            if is_repair(line.text, lex):
                return Moment(moment.kind, moment.start, moment.quote, moment.trigger_start,
                              line.start, line.text.strip(), moment.trigger_quote)
    return moment


def is_repair(text: str, lex: rw.Lexicon | None = None) -> bool:
    """Whether a clinician line acknowledges, apologises or invites the disagreement."""
    lex = lex or rw.lexicon()
    for sentence in rw.sentences(text):
        spans = rw.hits(sentence, lex.repair, lex)
        blocked = [span for p in lex.not_repair for span in p.find(sentence.words)]
        if any(not any(b0 < e and s < b1 for b0, b1 in blocked) for s, e in spans):
            return True
    return False
