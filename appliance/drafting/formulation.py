"""The case conceptualization drafted from a client's signed sessions, every statement checked.

The five Ps are drafted the way the note drafter's line-by-line pass works
(:mod:`appliance.drafting.lines`), which the bundled small model can do: for each
P the code picks the client's lines it is about, across the signed sessions (by
the P's cue words, and by the words the signed note of that session uses, so
what the clinician signed steers the choice), asks the model for one sentence
per line and cites that line itself (session and second). :func:`check` then
compares the sentence with the cited line of the cited session with
:func:`appliance.drafting.verify.verify`, exactly as for notes: a citation of a
session that is not one of the sources, or of a time no line starts at, drops
the statement; words the line does not support keep it out with the reason.
Lines the risk screen flagged, or with risk language, are never restated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from appliance.clients.formulation import Citation, Statement
from appliance.drafting import lines as by_line
from appliance.drafting import parse, verify
from appliance.drafting.drafter import LINES_PER_SECTION, DraftStats, Model
from appliance.notes import times
from appliance.notes.facts import Line

OTHER_SESSION = "it cites a session that is not one of this client's signed sessions"

# Which lines each P is about: the client's own words, by topic.
FOCUS: dict[str, by_line.Focus] = {
    "presenting": by_line.Focus("client", (
        "panic", "anxi", "worr", "scared", "afraid", "fear", "heart", "numb", "faint", "attack",
        "sleep", "tired", "low", "sad", "chest", "tight", "can't", "hard")),
    "predisposing": by_line.Focus("client", (
        "always", "grew up", "child", "family", "father", "mother", "dad", "mum", "mom",
        "parent", "school", "years", "used to", "never", "kid", "young")),
    "precipitating": by_line.Focus("client", (
        "since", "began", "promotion", "new job", "months ago", "first time", "changed",
        "lost", "moved", "divorce", "died", "accident")),
    "perpetuating": by_line.Focus("client", (
        "avoid", "sick", "calling in", "drink", "wine", "glass", "every night", "badly",
        "stay home", "skip", "instead", "worse", "on mondays", "nightly")),
    "protective": by_line.Focus("client", (
        "sister", "friend", "support", "helped", "proud", "better", "manage", "enjoy",
        "did it", "able", "less scared", "told", "log", "every day")),
}
# One system prompt for every P (the approach named, not the P): the model's cache keeps it
# and the worked examples across all the calls, so each call evaluates only its line.
# The order the Ps pick their lines in (a line goes to one P only): the narrow ones first,
# so the presenting problem, which many lines speak of, does not take the one line that
# says what set it off.
DRAFT_ORDER = ("precipitating", "predisposing", "perpetuating", "protective", "presenting")
SYSTEM = ("You turn one line of a therapy session transcript into one short sentence for the "
          "therapist's case conceptualization, written in a {approach} approach. Use only what "
          "the line says; add nothing. Write about the client in the third person. Answer with "
          "the sentence only.")


@dataclass(frozen=True)
class SourceSession:
    """One signed session of the client: its transcript lines and what its signed note says."""

    session_id: int
    lines: tuple[Line, ...]
    note_text: str = ""
    clinician: str = "Clinician"
    flagged: frozenset[float] = frozenset()  # lines the risk screen flagged: never restated


@dataclass
class PDraft:
    """One P's statements and how many the check dropped."""

    key: str
    statements: list[Statement] = field(default_factory=list)
    dropped: int = 0
    stats: DraftStats = field(default_factory=DraftStats)


def check(text: str, citation: Citation, sources: Sequence[SourceSession]) -> Statement | None:
    """``text`` checked against the cited line of the cited session; None when dropped.

    Dropped: the session is not one of ``sources`` (another client's, an unsigned
    one) or no line of it starts at the cited second. Kept out with the reason:
    whatever :func:`verify.verify` finds (names, numbers, risk language, content
    words the line does not have).
    """
    source = next((s for s in sources if s.session_id == citation.session_id), None)
    if source is None:
        return None
    raw = parse.Raw(text, (times.clock(citation.start_s),))
    verdict = verify.verify(raw, source.lines, verify.lower_case_words(source.lines), source.clinician)
    if verdict.dropped:
        return None
    cited = tuple(Citation(source.session_id, start) for start in verdict.citations)
    return Statement(text, cited, verdict.ok, verdict.problem)


class FormulationDrafter:
    """Drafts the five Ps from a client's signed sessions with one loaded model."""

    def __init__(self, model: Model, *, approach: str = "integrative", length: str = "brief",
                 quotes: str = "some"):
        self.model = model
        self.approach = approach.replace("-", " ")
        self.count = LINES_PER_SECTION.get(length, 3)
        self.quotes = quotes
        self.used: set[tuple[int, float]] = set()  # lines an earlier P restated

    def draft(self, sources: Sequence[SourceSession],
              after_each: Callable[[PDraft], None] | None = None, skip: Sequence[str] = ()
              ) -> list[PDraft]:
        """Every P not in ``skip``, in order; ``after_each`` sees each as it is done."""
        done = []
        for key in DRAFT_ORDER:
            if key in skip:
                continue
            drafted = self.draft_p(key, sources)
            done.append(drafted)
            if after_each is not None:
                after_each(drafted)
        return done

    def draft_p(self, key: str, sources: Sequence[SourceSession]) -> PDraft:
        """One P: a sentence per picked line, each checked against its line."""
        result = PDraft(key)
        seen: set[str] = set()
        for source, line in self.pick(key, sources):
            completion = self.model.chat(self.messages(line), max_tokens=by_line.SENTENCE_TOKENS)
            result.stats.add(completion)
            self.used.add((source.session_id, line.start))
            text = by_line.sentence(completion.text)
            norm = verify.normalise(text)
            if len(norm.split()) < 3 or norm in seen:  # fragments and repeats say nothing new
                result.dropped += 1
                continue
            seen.add(norm)
            statement = check(text, Citation(source.session_id, line.start), sources)
            if statement is None:
                result.dropped += 1
            else:
                result.statements.append(statement)
        return result

    def messages(self, line: Line) -> list[dict]:
        """The chat for one line: the note drafter's, with the approach named."""
        chat = by_line.messages(line, self.quotes)
        system = SYSTEM.format(approach=self.approach)
        return [{"role": "system", "content": system + by_line.QUOTE_RULE.get(self.quotes, "")},
                *chat[1:]]

    def pick(self, key: str, sources: Sequence[SourceSession]) -> list[tuple[SourceSession, Line]]:
        """The lines this P is about, best first by score, then in session and time order."""
        focus = FOCUS[key]
        candidates = []
        for order, source in enumerate(sources):
            steer = _content_words(source.note_text)
            avoid = frozenset(start for sid, start in self.used if sid == source.session_id)
            for line in by_line.pick(source.lines, focus, len(source.lines), source.clinician,
                                     avoid | source.flagged):
                score = _score(line, focus, steer)
                if score > 0:
                    candidates.append((score, order, source, line))
        best = sorted(candidates, key=lambda c: (-c[0], c[1], c[3].start))[:self.count]
        return [(source, line) for _, _, source, line in sorted(best, key=lambda c: (c[1], c[3].start))]


def _content_words(text: str) -> set[str]:
    """The signed note's words of four or more letters, by their first four (as the check counts)."""
    return {w[:4] for w in verify.normalise(text).split()
            if len(w) >= 4 and w not in verify.terms()["note_words"]}


def _score(line: Line, focus: by_line.Focus, steer: set[str]) -> float:
    """Cue words of the P count most; words the signed note shares with the line break ties."""
    text = f" {line.text.lower()} "
    cues = sum(1 for cue in focus.cues if cue in text)
    if not cues:
        return 0.0
    shared = {w[:4] for w in verify.normalise(line.text).split() if len(w) >= 4} & steer
    return cues + 0.25 * min(len(shared), 4)
