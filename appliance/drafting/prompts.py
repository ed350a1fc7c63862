"""The model's instructions for one section, over transcript chunks that fit its context.

Transcript lines go to the model as ``[m:ss] Speaker: words`` (the times the page
shows), and the model is asked to end every statement with the times of the lines
it rests on. The transcript chunk comes first and the section's instruction last,
so the sections of one chunk share the evaluated prefix in llama.cpp's cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from appliance.drafting.settings import PracticeSettings, SectionSpec
from appliance.notes import times
from appliance.notes.facts import Line

SYSTEM = (
    "You write parts of a therapist's session note from a transcript. Write only what the "
    "transcript says. Never add a diagnosis, a medication, a name, a number or a mental "
    "status finding that is not in the transcript. Do not write about suicide, self-harm or "
    "risk: a separate screen reports those words verbatim. "
    "Write each statement on its own line starting with \"- \" and end it with the times "
    "of the transcript lines it comes from, in square brackets, like [1:05] or [1:05, 2:10]. "
    "If the transcript says nothing for this part, write exactly: - Not discussed."
)
# A worked example, so that even a small model sees the shape of an answer.
# Its words are unlikely in a session, so that a copied example fails the check.
EXAMPLE_USER = (
    "Transcript:\n[0:05] Clinician: How did the week go?\n"
    "[0:09] Client: My canoe club moved to Fridays and I missed it twice.\n"
    "[0:15] Clinician: Could you ask the club about a weekend group?\n\n"
    "Part: What the client reported.\nRules: Write at most 3 short statements."
)
EXAMPLE_ANSWER = "- The client missed the canoe club twice after it moved to Fridays. [0:09]"
# Tokens kept free besides the transcript: instructions, the example, the answer's frame.
OVERHEAD_TOKENS = 420


def line_text(line: Line) -> str:
    """One transcript line as the model reads it."""
    return f"[{times.clock(line.start)}] {line.speaker}: {line.text.strip()}"


def chunks(lines: Sequence[Line], budget_tokens: int,
           count_tokens: Callable[[str], int]) -> list[list[Line]]:
    """Consecutive runs of lines whose text fits ``budget_tokens`` each.

    A single line longer than the budget is cut to fit (with a note that it was),
    rather than dropped: a monologue still reaches the model.
    """
    result: list[list[Line]] = []
    current: list[Line] = []
    used = 0
    for original in lines:
        line, cost = original, count_tokens(line_text(original)) + 1
        if cost > budget_tokens:
            line = _shortened(original, budget_tokens, count_tokens)
            cost = count_tokens(line_text(line)) + 1
        if current and used + cost > budget_tokens:
            result.append(current)
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        result.append(current)
    return result


def _shortened(line: Line, budget_tokens: int, count_tokens: Callable[[str], int]) -> Line:
    words = line.text.split()
    while words and count_tokens(line_text(_with_text(line, words))) + 1 > budget_tokens:
        words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
    return _with_text(line, words)


def _with_text(line: Line, words: list[str]) -> Line:
    return Line(line.index, line.start, line.end, line.speaker, " ".join(words) + " …")


def messages(chunk: Sequence[Line], section: SectionSpec, settings: PracticeSettings,
             part: int = 1, parts: int = 1) -> list[dict]:
    """The chat messages asking for one section's statements from one chunk."""
    where = f" (part {part} of {parts} of the session)" if parts > 1 else ""
    transcript = "\n".join(line_text(line) for line in chunk)
    user = (f"Transcript{where}:\n{transcript}\n\n"
            f"Part: {section.instruction}\nRules: {settings.style()}")
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_USER},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
        {"role": "user", "content": user},
    ]
