"""The drafting half of ``bench drafting``, run in a process of its own.

``python -m tests.bench.drafting_run IN_DIR OUT_JSON`` loads the configured model
once (as the overnight job does), drafts every ``*.result.json`` transcript in
``IN_DIR`` with :func:`appliance.transcription.drafts.draft_in_memory` and writes the
notes and the figures to ``OUT_JSON``. Its own process, so that its peak RSS
(``VmHWM``) is the drafting job's and not the transcription model's.

The model is wrapped in :class:`Metered`, which tells apart the prompt tokens
llama.cpp evaluated from those it reused from its cache (the transcript comes first
in every prompt, so the sections of one chunk share it): the prompt speed is
evaluated tokens per second of prompt time, and the Pi projection needs both.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from appliance import config as config_mod
from appliance.drafting import prompts
from appliance.drafting.runtime import Completion, LanguageModel
from appliance.drafting.settings import PracticeSettings
from appliance.notes import facts
from appliance.transcript import TranscriptResult
from appliance.transcription import drafts
from tests.support.llm import ModelProxy

MOMENT = "2026-10-05T20:00:00+00:00"


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _common_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


class Metered(ModelProxy):
    """A :class:`LanguageModel` that records, per call, how many prompt tokens were evaluated."""

    def __init__(self, model: LanguageModel):
        super().__init__(model)
        self.calls: list[dict] = []

    def chat(self, messages: list[dict], *, max_tokens: int) -> Completion:
        """The wrapped model's answer; the tokens found in llama.cpp's cache are counted."""
        llama = self.model._llama  # the bench looks inside on purpose
        before = [int(t) for t in llama.input_ids]
        completion = self.model.chat(messages, max_tokens=max_tokens)
        prompt = [int(t) for t in llama.input_ids][: completion.prompt_tokens]
        cached = min(_common_prefix(before, prompt), completion.prompt_tokens)
        self.calls.append({"prompt_tokens": completion.prompt_tokens, "cached": cached,
                           "generated": completion.generated_tokens, "prompt_s": completion.prompt_s,
                           "generate_s": completion.generate_s, "looped": completion.looped})
        return completion


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def transcript_tokens(model: Metered, result: TranscriptResult) -> int:
    """Tokens of the transcript as the prompts give it (one line each)."""
    lines = facts.transcript_lines(result.segments)
    return sum(model.count_tokens(prompts.line_text(line)) + 1 for line in lines)


def draft_one(cfg, model: Metered, result: TranscriptResult) -> dict:
    """One note drafted, with its cost."""
    first = len(model.calls)
    started, cpu = time.perf_counter(), _cpu_seconds()
    note, totals = drafts.draft_in_memory(cfg, result, model, MOMENT)  # type: ignore[arg-type]
    return {"note": note, "wall_s": time.perf_counter() - started, "cpu_s": _cpu_seconds() - cpu,
            "audio_s": result.duration_s,
            "dropped": totals.dropped, "sections": totals.sections, "calls": model.calls[first:],
            "transcript_tokens": transcript_tokens(model, result)}


def summary_shape(cfg, model: Metered) -> dict:
    """For the projection: the drafted sections and the tokens each adds after the transcript.

    In the summary method every prompt is instructions, the transcript chunk, then the
    section's part; the sections of one chunk share everything before that part.
    """
    settings = PracticeSettings.from_config(cfg)
    specs = [spec for spec in settings.sections() if spec.drafted]
    tails = [model.count_tokens(f"Part: {spec.instruction}\nRules: {settings.style()}") for spec in specs]
    return {"sections": len(specs), "suffix_tokens": sum(tails) / len(tails)}


def main(argv: list[str]) -> None:
    """Draft every transcript of ``argv[0]``; write the figures to ``argv[1]``."""
    in_dir, out = Path(argv[0]), Path(argv[1])
    cfg = config_mod.load(in_dir / "holdnote.toml")
    rss_before = status_mb("VmRSS")
    started = time.perf_counter()
    loaded = drafts.load_model(cfg)
    if loaded is None:
        raise SystemExit("drafting.model is none: nothing to measure")
    model = Metered(loaded)
    load_s = time.perf_counter() - started
    sessions = {}
    for path in sorted(in_dir.glob("*.result.json")):
        result = TranscriptResult.from_bytes(path.read_bytes())
        sessions[path.name.removesuffix(".result.json")] = draft_one(cfg, model, result)
    out.write_text(json.dumps({
        "model": loaded.choice.label, "context_tokens": model.context_tokens,
        "load_s": load_s, "rss_before_mb": rss_before, "peak_mb": status_mb("VmHWM"),
        "summary": summary_shape(cfg, model), "method": cfg.drafting.method,
        "sessions": sessions}))


if __name__ == "__main__":
    main(sys.argv[1:])
