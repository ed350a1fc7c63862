"""One section at a time: the transcript in chunks that fit the context, every answer checked.

For a section the drafter asks the model once per chunk of transcript lines
(a 50-minute session is about 9,000 tokens: one chunk at the default 16,384), reads
the statements from each answer (:mod:`parse`), checks each against the lines
it cites (:mod:`verify`) and keeps the result per statement: verified, marked
with the reason, or dropped and counted when it cites no transcript line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from appliance.drafting import lines as by_line
from appliance.drafting import parse, prompts, verify
from appliance.drafting.runtime import Completion
from appliance.drafting.settings import PracticeSettings, SectionSpec
from appliance.notes import times
from appliance.notes.facts import Line

# Lines restated per section in the line-by-line pass, by the practice's length.
LINES_PER_SECTION = {"brief": 3, "detailed": 8}


class Model(Protocol):
    """What the drafter needs of a loaded model (:class:`runtime.LanguageModel`)."""

    @property
    def context_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def chat(self, messages: list[dict], *, max_tokens: int) -> Completion: ...


@dataclass
class DraftStats:
    """What drafting cost: tokens, seconds and model calls, summed."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    prompt_s: float = 0.0
    generate_s: float = 0.0
    calls: int = 0
    looped: int = 0

    def add(self, completion: Completion) -> None:
        """Count one answer."""
        self.prompt_tokens += completion.prompt_tokens
        self.generated_tokens += completion.generated_tokens
        self.prompt_s += completion.prompt_s
        self.generate_s += completion.generate_s
        self.calls += 1
        self.looped += completion.looped

    def merge(self, other: DraftStats) -> None:
        """Add another section's figures."""
        for name in ("prompt_tokens", "generated_tokens", "prompt_s", "generate_s", "calls", "looped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class SectionDraft:
    """A section's statements (verified or marked), how many were dropped, and the cost."""

    statements: list[dict] = field(default_factory=list)
    dropped: int = 0
    stats: DraftStats = field(default_factory=DraftStats)

    @property
    def verified(self) -> list[dict]:
        """The statements that passed the check: what goes into the note's text."""
        return [s for s in self.statements if s["verified"]]


class Drafter:
    """Drafts sections from transcript lines with one loaded model.

    ``method``: "summary" asks for a section over each chunk of the transcript and,
    when the check keeps nothing of it, restates the section's lines one by one;
    "lines" only restates lines (:mod:`appliance.drafting.lines`).
    """

    def __init__(self, model: Model, settings: PracticeSettings, *, max_tokens: int = 400,
                 method: str = "summary", clinician: str = "Clinician"):
        self.model = model
        self.settings = settings
        self.max_tokens = max_tokens
        self.method = method
        self.clinician = clinician
        self.used: set[float] = set()  # lines restated by an earlier section

    def chunks(self, lines: Sequence[Line]) -> list[list[Line]]:
        """The transcript cut into runs of lines that fit the context with the instructions."""
        budget = self.model.context_tokens - prompts.OVERHEAD_TOKENS - self.max_tokens
        if budget < 64:
            raise ValueError(f"a context of {self.model.context_tokens} tokens leaves no room for "
                             "the transcript; raise drafting.context_tokens")
        return prompts.chunks(lines, budget, self.model.count_tokens)

    def draft_section(self, lines: Sequence[Line], spec: SectionSpec) -> SectionDraft:
        """The section's statements, each checked against the lines it cites."""
        result = SectionDraft()
        if not spec.drafted or not lines:
            return result
        words = verify.lower_case_words(lines)
        seen: set[str] = set()
        if self.method == "summary":
            self._summary(lines, spec, words, result, seen)
        if not result.verified:
            self._line_by_line(lines, spec, words, result, seen)
        return result

    def _summary(self, lines: Sequence[Line], spec: SectionSpec, words: set[str],
                 result: SectionDraft, seen: set[str]) -> None:
        parts = self.chunks(lines)
        for number, chunk in enumerate(parts, 1):
            messages = prompts.messages(chunk, spec, self.settings, number, len(parts))
            completion = self.model.chat(messages, max_tokens=self.max_tokens)
            result.stats.add(completion)
            raws, _said_none = parse.statements(completion.text)
            for raw in raws:
                self._check(raw, lines, words, result, seen)

    def _line_by_line(self, lines: Sequence[Line], spec: SectionSpec, words: set[str],
                      result: SectionDraft, seen: set[str]) -> None:
        focus = by_line.focus_for(spec.instruction)
        count = LINES_PER_SECTION.get(self.settings.length, 3)
        for line in by_line.pick(lines, focus, count, self.clinician, self.used):
            completion = self.model.chat(by_line.messages(line, self.settings.quotes),
                                         max_tokens=by_line.SENTENCE_TOKENS)
            result.stats.add(completion)
            raw = parse.Raw(by_line.sentence(completion.text), (times.clock(line.start),))
            self._check(raw, lines, words, result, seen)
            self.used.add(line.start)

    def _check(self, raw: parse.Raw, lines: Sequence[Line], words: set[str],
               result: SectionDraft, seen: set[str]) -> None:
        key = verify.normalise(raw.text)
        if len(key.split()) < 3 or key in seen:  # fragments and repeats say nothing new
            result.dropped += 1
            return
        seen.add(key)
        verdict = verify.verify(raw, lines, words, self.clinician)
        if verdict.dropped:
            result.dropped += 1
            return
        result.statements.append({"text": raw.text, "citations": list(verdict.citations),
                                  "verified": verdict.ok, "problem": verdict.problem})
