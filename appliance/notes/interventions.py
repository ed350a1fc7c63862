"""Your interventions: how the clinician spoke in one session, counted from the labelled transcript.

Cues for the clinician's own review, never judgments. :func:`session_interventions`
takes a transcript and the speaker label of the clinician's lines (the caller
works it out with :func:`appliance.clients.lines.identify`); everyone else who
speaks is counted as the client. It gives :class:`Interventions`, each figure
with the line starts of its instances so the page can link them, or
:class:`Unavailable` with the reason in words when the speakers cannot be told
apart: then no figure is shown rather than a wrong one. Pure; nothing stored.

Definitions (the page and the README say the same):

* share of talk: the clinician's seconds of speech over everyone's;
* questions, open or closed, and reflections: :mod:`appliance.notes.intervention_rules`;
* interruption: a clinician line starting more than :data:`TOLERANCE_S` before
  the client's line before it ended; overlap: any line starting so before the
  other side's line ended (interruptions included);
* response time: from the end of a client line to the start of the clinician
  line right after it (interruptions left out); median and 90th percentile;
* long silences: the transcript's silences (longer than the
  ``notes.silence_threshold_seconds`` setting), each with who spoke last
  before it and who broke it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

from appliance.notes import intervention_rules
from appliance.notes.facts import UNKNOWN_SPEAKER
from appliance.transcript import Segment, TranscriptResult

# Speaker turns from diarization are rarely exact to the syllable: an overlap shorter
# than this is boundary noise, not two people talking at once.
TOLERANCE_S = 0.25
_UNNAMED = re.compile(r"speaker[ _]?\d+", re.IGNORECASE)

NO_LINES = "This session has no transcript lines, so there is nothing to count."
UNLABELLED = ("The speakers are not labelled: the transcript calls them {names}, so none is "
              "known to be you. Enrolling your voice (holdnote enroll-voice) labels your lines "
              "in later transcripts.")
ONE_VOICE = ("The speakers are not labelled: every line is \u201c{name}\u201d (one voice was "
             "told apart in this recording), so your lines cannot be told from the client's.")
NO_CLINICIAN = ("No line of this transcript is yours (labelled \u201c{name}\u201d), so there "
                "are no interventions to count.")
NO_CLIENT = "Only you speak in this transcript: there are no client lines to respond to."


@dataclass(frozen=True)
class Unavailable:
    """Why the interventions of a session cannot be counted, in words for the page."""

    reason: str


@dataclass(frozen=True)
class SilenceBreak:
    """One long silence: when it started, how long, who spoke before it and who broke it.

    ``before``/``broken_by`` are "clinician", "client" or "" (nobody: the start
    or end of the recording); ``line_start`` is the start of the line that broke it.
    """

    start: float
    duration_s: float
    before: str
    broken_by: str
    line_start: float | None


@dataclass(frozen=True)
class Interventions:
    """The clinician's interventions in one session.

    Each tuple of floats holds the start (seconds) of the clinician line of each
    instance (for ``overlaps``: of the line that started while the other still
    spoke). Figures that could not be computed are None; ``limits`` says, per
    figure, what could not be counted and why (empty when everything could).
    """

    clinician: str
    clinician_talk_s: float
    client_talk_s: float
    open_questions: tuple[float, ...]
    closed_questions: tuple[float, ...]
    reflections: tuple[float, ...]
    interruptions: tuple[float, ...]
    overlaps: tuple[float, ...]
    latencies_s: tuple[float, ...]
    silences: tuple[SilenceBreak, ...]
    clinician_lines: int
    limits: tuple[str, ...] = ()

    @property
    def share(self) -> float | None:
        """The clinician's share of all talk time, 0 to 1 (None without talk time)."""
        total = self.clinician_talk_s + self.client_talk_s
        return self.clinician_talk_s / total if total > 0 else None

    @property
    def questions(self) -> int:
        """Lines asking a question, open or closed."""
        return len(self.open_questions) + len(self.closed_questions)

    @property
    def latency_median_s(self) -> float | None:
        """The median response time, None when the clinician never answered a client line."""
        return median(self.latencies_s) if self.latencies_s else None

    @property
    def latency_p90_s(self) -> float | None:
        """The 90th percentile response time (nearest rank), None without any."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]

    def broken_by(self, who: str) -> int:
        """How many long silences ``who`` ("clinician" or "client") broke."""
        return sum(1 for s in self.silences if s.broken_by == who)


def session_interventions(result: TranscriptResult, clinician: str) -> Interventions | Unavailable:
    """The interventions of the speaker labelled ``clinician`` in ``result``, or why not."""
    lines = sorted((s for s in result.segments if s.speaker != UNKNOWN_SPEAKER),
                   key=lambda s: (s.start, s.end))
    unavailable = _unavailable(result, lines, clinician)
    if unavailable is not None:
        return unavailable
    mine = [s for s in lines if s.speaker == clinician]
    theirs = [s for s in lines if s.speaker != clinician]
    kinds = _kinds(lines, clinician)
    interruptions, overlaps = _overlaps(lines, clinician)
    latencies = _latencies(lines, clinician)
    return Interventions(
        clinician=clinician,
        clinician_talk_s=_talk(mine), client_talk_s=_talk(theirs),
        open_questions=tuple(s.start for s, k in kinds if k.question == intervention_rules.OPEN),
        closed_questions=tuple(s.start for s, k in kinds
                               if k.question == intervention_rules.CLOSED),
        reflections=tuple(s.start for s, k in kinds if k.reflection),
        interruptions=interruptions, overlaps=overlaps,
        latencies_s=latencies,
        silences=tuple(_silence_breaks(result, lines, clinician)),
        clinician_lines=len(mine),
        limits=_limits(result, lines, mine, answered=bool(latencies)))


def _unavailable(result: TranscriptResult, lines: list[Segment],
                 clinician: str) -> Unavailable | None:
    """Why nothing can be counted (no lines, unlabelled, one voice, none of the clinician's)."""
    names = sorted({s.speaker for s in lines})
    if not lines:
        return Unavailable(NO_LINES)
    if clinician not in names and all(_UNNAMED.fullmatch(n) for n in names):
        if len(names) == 1:
            return Unavailable(ONE_VOICE.format(name=names[0]))
        return Unavailable(UNLABELLED.format(names=", ".join(names)))
    if clinician not in names:
        return Unavailable(NO_CLINICIAN.format(name=clinician))
    if len(names) == 1:
        return Unavailable(NO_CLIENT)
    return None


def _talk(lines: list[Segment]) -> float:
    return sum(max(0.0, s.end - s.start) for s in lines)


def _kinds(lines: list[Segment], clinician: str) -> list[tuple[Segment, intervention_rules.LineKind]]:
    """Each clinician line with what it is, given the client line just before it."""
    rules = intervention_rules.rules()
    kinds = []
    for index, line in enumerate(lines):
        if line.speaker != clinician:
            continue
        before = lines[index - 1] if index else None
        after_client = before.text if before is not None and before.speaker != clinician else None
        kinds.append((line, intervention_rules.classify(line.text, after_client, rules)))
    return kinds


def _overlaps(lines: list[Segment], clinician: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The clinician's interruptions, and every overlap of the two sides (by the later line)."""
    interruptions, overlaps = [], []
    last_end = {True: float("-inf"), False: float("-inf")}  # by "is the clinician"
    for line in lines:
        mine = line.speaker == clinician
        if line.start < last_end[not mine] - TOLERANCE_S:
            overlaps.append(line.start)
            if mine:
                interruptions.append(line.start)
        last_end[mine] = max(last_end[mine], line.end)
    return tuple(interruptions), tuple(overlaps)


def _latencies(lines: list[Segment], clinician: str) -> tuple[float, ...]:
    """Seconds from a client line's end to the clinician line right after it (not interrupting)."""
    gaps = []
    for before, line in pairwise(lines):
        if before.speaker != clinician and line.speaker == clinician:
            gap = line.start - before.end
            if gap >= -TOLERANCE_S:
                gaps.append(max(0.0, gap))
    return tuple(gaps)


def _side(line: Segment | None, clinician: str) -> str:
    if line is None:
        return ""
    return "clinician" if line.speaker == clinician else "client"


def _silence_breaks(result: TranscriptResult, lines: list[Segment], clinician: str):
    for silence in result.silences:
        before = [s for s in lines if s.end <= silence.start + TOLERANCE_S]
        after = next((s for s in lines if s.start >= silence.end - TOLERANCE_S), None)
        yield SilenceBreak(silence.start, silence.duration,
                           _side(before[-1] if before else None, clinician),
                           _side(after, clinician), after.start if after else None)


def _limits(result: TranscriptResult, lines: list[Segment], mine: list[Segment], *,
            answered: bool) -> tuple[str, ...]:
    """What could only partly be counted, per figure, in words."""
    limits = []
    unknown = sum(1 for s in result.segments if s.speaker == UNKNOWN_SPEAKER)
    if unknown:
        limits.append(f"{unknown} line{'s' * (unknown != 1)} had no speaker and "
                      f"{'are' if unknown != 1 else 'is'} left out of every figure.")
    others = {s.speaker for s in lines} - {s.speaker for s in mine}
    if len(others) > 1:
        limits.append(f"{len(others)} other people speak; all of them are counted as the client.")
    if not any(c in s.text for s in mine for c in ".?!"):
        limits.append("Questions: your lines have no punctuation, so only questions starting "
                      "with a question word (what, how …) are counted.")
    if not answered:
        limits.append("Response time: you never spoke right after a client line ended, so "
                      "there is none to measure.")
    return tuple(limits)
