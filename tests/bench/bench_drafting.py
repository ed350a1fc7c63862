"""Drafting: speed, memory and quality of the drafted note, and a projection for a Pi 5.

Run as ``python -m tests.bench drafting`` (or ``make bench``). Reads
../shared/testdata/speech: the client series (week1–3, with ``facts.json``) and the
dialogues (sleep, quiet). Prints:

1. Speed with the bundled model here (SmolLM2-135M-Instruct), against a baseline run
   in the same invocation: the transcription pipeline with tiny.en on the same audio.
   The ratio is drafting seconds per audio minute / transcription seconds per audio
   minute (wall clock), so it does not depend on how fast this machine is. Prompt
   tokens/s counts the tokens llama.cpp evaluated (not those it reused from its cache)
   per second of prompt time; generation tokens/s the tokens it wrote per second of
   writing. Peak RSS is ``VmHWM`` of the drafting process (a child process that only
   drafts: :mod:`tests.bench.drafting_run`), beside its RSS before the model loaded.
2. A projection for the appliance default (Qwen2.5-1.5B-Instruct Q4_K_M on a Pi 5),
   which drafts by summary (each section over each transcript chunk; the bundled model
   restates lines one by one instead, ``drafting.method = "auto"``): the transcript
   tokens per audio minute measured here, scaled to six 50-minute sessions, the
   drafter's instruction budget, at published Pi 5 speeds; with base.en transcription,
   inside a 6-hour night or not. The arithmetic is printed.
3. Quality: reference facts covered by verified statements, statements dropped by the
   check, citations that point at a line sharing a key word with the statement
   (definitions in :mod:`tests.bench.drafting_quality`), and risk-phrase recall scored
   as ``bench risk`` scores it.

Drafting runs on tiny.en's transcripts of all five sessions (what the device would
have). ``HOLDNOTE_BENCH_QUICK=1``: the series' reference lines instead, and the
baseline on week1 only (about a minute instead of several).
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance import config as config_mod
from appliance.drafting import prompts
from appliance.drafting.runtime import default_threads
from appliance.notes import draft, facts, risk
from appliance.transcript import Segment, TranscriptResult
from tests.bench import bench_risk
from tests.bench.drafting_quality import Quality, series_facts, share

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "testdata" / "speech"
QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
SESSIONS = {"week1": "series", "week2": "series", "week3": "series",
            "sleep": "dialogue", "quiet": "dialogue"}
SERIES = ("week1", "week2", "week3")

# Published figures for the projection (sources printed with them).
PI5_GENERATE_TPS = 7.5   # Qwen2.5-1.5B Q4_K_M generation on a Pi 5 (issue 13's figure)
# Prompt processing: https://justine.lol/matmul/ ("LLaMA Now Goes Faster on CPUs", 2024)
# measured TinyLlama 1.1B Q8_0 on a Pi 5 with llama.cpp at 35 prompt tokens/s; scaled by
# parameter count to Qwen2.5's 1.54 B: 35 x 1.1 / 1.54 = 25 tokens/s (an assumption).
PI5_PROMPT_TPS = 25.0
PI5_ASR_X = 4.0          # base.en on a Pi 5: README's expected 4-6x real time, low end
NIGHT_MIN, DAY_SESSIONS, SESSION_MIN = 360, 6, 50


# --- inputs ---------------------------------------------------------------------------------


def bench_config(root: Path, llm: str = "bundled-smollm2") -> config_mod.Config:
    """tiny.en for the baseline, the bundled model with the shipped drafting defaults."""
    from tests.conftest import make_config

    return make_config(root, transcription={"model": "bundled-tiny"}, drafting={"model": llm})


def reference_result(name: str) -> TranscriptResult:
    """A transcript result made from a session's reference lines, as the pipeline makes one."""
    folder = SPEECH / SESSIONS[name]
    rows = (row.split("\t") for row in (folder / f"{name}.txt").read_text().splitlines() if row)
    segments = [Segment(float(s), float(e), who.capitalize(), text) for s, e, who, text in rows]
    duration = json.loads((folder / f"{name}.json").read_text())["duration_s"]
    silences = facts.find_silences(segments, duration, 10.0)
    metrics = facts.compute_metrics(segments, duration, silences)
    flags = risk.find_risk_flags(segments)
    note = draft.build_draft_note("SOAP", session_date="2026-10-05", duration_s=duration,
                                  metrics=metrics, silences=silences, flags=flags, bookmarks=[],
                                  speakers=["Clinician", "Client"])
    return TranscriptResult(duration_s=duration, model="reference", language="en",
                            segments=tuple(segments), silences=tuple(silences), metrics=metrics,
                            flags=tuple(flags), note=note)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def transcribe(cfg, names: tuple[str, ...]) -> dict[str, tuple[TranscriptResult, float, float]]:
    """The pipeline with tiny.en on each session's mono recording: (result, wall s, CPU s)."""
    from appliance.transcription import asr, commands

    choice = asr.resolve_model(cfg.transcription, Path(cfg.paths.data_dir))
    recognizer = asr.Recognizer(asr.load_model(choice, "int8", 0), asr.AsrOptions(), "tiny.en")
    done = {}
    for name in names:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        result = commands.transcribe_file(cfg, SPEECH / SESSIONS[name] / f"{name}.mono.wav",
                                          recognizer=recognizer)
        done[name] = (result, time.perf_counter() - wall, _cpu_seconds() - cpu)
    return done


def run_drafting(root: Path, cfg, inputs: dict[str, TranscriptResult]) -> dict:
    """Draft every input in a child process (:mod:`drafting_run`); its figures, in input order."""
    folder = root / "drafting"
    folder.mkdir()
    (folder / "holdnote.toml").write_text(config_mod.to_toml(cfg), encoding="utf-8")
    for name, result in inputs.items():
        (folder / f"{name}.result.json").write_bytes(result.to_bytes())
    out = root / "drafting.json"
    subprocess.run([sys.executable, "-m", "tests.bench.drafting_run", str(folder), str(out)],
                   cwd=ROOT, check=True)
    data = json.loads(out.read_text())
    data["sessions"] = {name: data["sessions"][name] for name in inputs}
    return data


# --- 1. speed --------------------------------------------------------------------------------


def _sums(calls: list[dict]) -> dict:
    total = {key: sum(c[key] for c in calls) for key in ("prompt_tokens", "cached", "generated",
                                                         "prompt_s", "generate_s", "looped")}
    total["evaluated"] = total["prompt_tokens"] - total["cached"]
    total["calls"] = len(calls)
    return total


def _speed_row(label: str, minutes: float, times: tuple[float, float], calls: list[dict],
               asr_per_min: float | None):
    s = _sums(calls)
    per_min = times[0] / minutes
    ratio = f"{per_min / asr_per_min:6.1f}" if asr_per_min else "     -"
    print(f"   {label:<7} {minutes:5.1f} {per_min:7.1f} {times[1] / minutes:6.1f} {ratio}  "
          f"{s['prompt_tokens']:7d} "
          f"{s['evaluated']:7d} {s['evaluated'] / max(s['prompt_s'], 1e-9):7.0f} "
          f"{s['generated']:6d} {s['generated'] / max(s['generate_s'], 1e-9):6.1f} "
          f"{s['calls']:4d} {s['looped']:3d}")


def print_speed(data: dict, baseline: dict[str, tuple[TranscriptResult, float, float]]) -> None:
    sessions = data["sessions"]
    asr_min = sum(r.duration_s for r, _, _ in baseline.values()) / 60
    asr_wall = sum(w for _, w, _ in baseline.values())
    asr_cpu = sum(c for _, _, c in baseline.values())
    asr_per_min = asr_wall / asr_min
    print(f"\n1. Drafting speed: {data['model']}, {default_threads()} thread(s) of "
          f"{os.cpu_count()} cores, context {data['context_tokens']} tokens, SOAP, {'reference lines' if QUICK else 'tiny.en transcripts'}")
    print(f"   baseline: the pipeline with tiny.en on {', '.join(baseline)} ({asr_min:.1f} min of audio): "
          f"{asr_per_min:.1f} s per audio minute by the clock ({asr_cpu / asr_min:.1f} CPU-s)")
    print("   session  min  draft s  CPU-s  ratio  prompt  evaluated tok/s    gen  tok/s calls loops")
    print("                 (per audio min) (x ASR)  tokens   tokens")
    for name, s in sessions.items():
        own = baseline.get(name)
        own_rate = own[1] / (own[0].duration_s / 60) if own else None
        _speed_row(name, s["audio_s"] / 60, (s["wall_s"], s["cpu_s"]), s["calls"], own_rate)
    all_calls = [c for s in sessions.values() for c in s["calls"]]
    minutes = sum(s["audio_s"] for s in sessions.values()) / 60
    times = (sum(s["wall_s"] for s in sessions.values()), sum(s["cpu_s"] for s in sessions.values()))
    _speed_row("all", minutes, times, all_calls, asr_per_min)
    model_mb = data["peak_mb"] - data["rss_before_mb"]
    print(f"   peak RSS of the drafting process (VmHWM) {data['peak_mb']:.0f} MiB: "
          f"{data['rss_before_mb']:.0f} MiB before the model loaded (Python, Holdnote, llama.cpp), "
          f"{model_mb:.0f} MiB for the model, its KV cache and buffers; model loaded in "
          f"{data['load_s']:.1f} s")


# --- 2. projection ---------------------------------------------------------------------------


def tokens_per_minute(data: dict) -> float:
    """Transcript tokens per audio minute in the speech-dense sessions (the series)."""
    series = [data["sessions"][n] for n in SERIES if n in data["sessions"]]
    return (sum(s["transcript_tokens"] for s in series)
            / (sum(s["audio_s"] for s in series) / 60))


def sentence_tokens(data: dict) -> float:
    """Tokens the model wrote per answer here (one restated line each, in the lines method)."""
    calls = [c for s in data["sessions"].values() for c in s["calls"]]
    return sum(c["generated"] for c in calls) / len(calls)


def _night(label: str, prompt_tok: float, gen_tok: float) -> None:
    asr = DAY_SESSIONS * SESSION_MIN / PI5_ASR_X
    per = prompt_tok / PI5_PROMPT_TPS / 60 + gen_tok / PI5_GENERATE_TPS / 60
    total = asr + DAY_SESSIONS * per
    verdict = "fits" if total <= NIGHT_MIN else "does NOT fit"
    print(f"   {label}: {prompt_tok:,.0f} / {PI5_PROMPT_TPS:g} + {gen_tok:,.0f} / {PI5_GENERATE_TPS:g} "
          f"= {per:.1f} min a session; night = {asr:.0f} + {DAY_SESSIONS} x {per:.1f} = "
          f"{total:.0f} min of {NIGHT_MIN}: {verdict}")


def print_projection(cfg, data: dict) -> None:
    """The appliance default drafts by summary: every section over each transcript chunk."""
    d, shape = cfg.drafting, data["summary"]
    tokens = tokens_per_minute(data) * SESSION_MIN
    budget = d.context_tokens - prompts.OVERHEAD_TOKENS - d.max_tokens_per_section
    chunks = math.ceil(tokens / budget)
    sections, fixed, suffix = shape["sections"], prompts.OVERHEAD_TOKENS, shape["suffix_tokens"]
    calls = sections * chunks
    typical = 3 * (sentence_tokens(data) + 8)  # "brief": 3 statements, each with its [m:ss] times
    print("\n2. Projection: Qwen2.5-1.5B-Instruct Q4_K_M on a Raspberry Pi 5, six 50-minute sessions, "
          "drafted by summary (the method for a full-size model)")
    print(f"   published: generation {PI5_GENERATE_TPS:g} tokens/s (issue 13); prompt "
          f"{PI5_PROMPT_TPS:g} tokens/s = TinyLlama 1.1B Q8_0 35 tokens/s on a Pi 5 "
          "(justine.lol/matmul, llama.cpp 2024-03) x 1.1/1.54 B parameters (assumed)")
    asr = DAY_SESSIONS * SESSION_MIN / PI5_ASR_X
    print(f"   transcription base.en {PI5_ASR_X:g}x real time (README, expected): "
          f"{DAY_SESSIONS} x {SESSION_MIN} / {PI5_ASR_X:g} = {asr:.0f} min")
    print(f"   measured here (series, SmolLM2's tokenizer; Qwen2.5's is of the same order): "
          f"{tokens_per_minute(data):.0f} transcript tokens per audio minute -> {tokens:,.0f} per "
          f"session (issue 13: about 9,000); a section's own part {suffix:.0f} tokens; "
          f"instructions {fixed} tokens (the drafter's budget)")
    print(f"   chunks: {tokens:,.0f} / ({d.context_tokens} - {fixed} - {d.max_tokens_per_section}) "
          f"-> {chunks}; calls = {sections} sections x {chunks} = {calls}; an answer: 3 statements x "
          f"({sentence_tokens(data):.0f} tokens a sentence here + 8 for its times) = {typical:.0f} "
          f"tokens, at most {d.max_tokens_per_section}")
    # One chunk: the sections share it in the cache. More: sections outside, chunks inside,
    # so each call finds the other chunk in the cache and evaluates its own again.
    now = (fixed + tokens + (sections - 1) * suffix if chunks == 1
           else sections * tokens + calls * fixed)
    _night("as drafted now, typical answers", now, calls * typical)
    _night("as drafted now, every answer at its limit", now, calls * d.max_tokens_per_section)
    if chunks > 1:
        kept = tokens + chunks * fixed + (calls - chunks) * suffix
        _night("if the sections of one chunk ran in a row (its cache kept), typical", kept,
               calls * typical)
    print("   memory: published about 1.6 GB for the 1.5B model; a Pi 5 with 8 GB holds it "
          "beside transcription, which runs before it")


# --- 3. quality ------------------------------------------------------------------------------


def risk_tally(results: dict[str, TranscriptResult]) -> bench_risk.Tally:
    """bench risk's scoring on these transcripts (each line given its reference speaker)."""
    tally = bench_risk.Tally()
    for name, result in results.items():
        lines = bench_risk.reference(name)
        rows = []
        for seg in result.segments:
            row = {"start": seg.start, "end": seg.end, "text": seg.text}
            row["speaker"] = max(lines, key=lambda ref, r=row: min(ref["end"], r["end"])
                                 - max(ref["start"], r["start"]))["speaker"]
            rows.append(row)
        bench_risk.score_session(tally, name, rows)
    return tally


def print_quality(data: dict, inputs: dict[str, TranscriptResult]) -> None:
    reference = series_facts(SPEECH / "series" / "facts.json")
    total = Quality()
    source = "reference lines (quick mode)" if QUICK else "tiny.en's transcripts"
    print(f"\n3. Quality of the drafted notes on {source}")
    print("   session  facts covered    verified marked dropped (share)     citations hitting")
    for name, drafted in data["sessions"].items():
        one = Quality()
        for q in (one, total):
            lines = facts.transcript_lines(inputs[name].segments)
            q.add_note(drafted["note"], lines, drafted["dropped"])
            if name in reference:
                q.add_facts(drafted["note"], reference[name], name)
        covered = share(one.covered, one.facts) if name in reference else "no facts.json"
        print(f"   {name:<8} {covered:<16} {one.verified:8d} {one.marked:6d} "
              f"{share(one.dropped, one.proposed):<18} {share(one.hits, one.citations)}")
    print(f"   all      {share(total.covered, total.facts):<16} {total.verified:8d} {total.marked:6d} "
          f"{share(total.dropped, total.proposed):<18} {share(total.hits, total.citations)}")
    tally = risk_tally(inputs)
    hits, expected = sum(tally.recalled.values()), sum(tally.expected.values())
    print(f"   risk-phrase recall on the same {source} (bench risk's scoring; the flags go into "
          f"the note verbatim): {share(hits, expected)}, false alarms {sum(tally.false_alarms.values())}")
    for missed in total.missed:
        print(f"     fact not covered  {missed}")


def followup_found(planned: list[str], followed_up: list[str], lines: list) -> tuple[int, int, int]:
    """(topics found, items said discussed, citations the check keeps) for one pair of sessions."""
    from appliance.drafting import followup

    made = followup.statements(planned, lines, "Plan of the note signed earlier")
    discussed = [s for s in made if not s["absent"]]
    stems = {followup.stem(w) for s in discussed for w in s["matched"]}
    found = sum(1 for topic in followed_up if {followup.stem(w) for w in topic.split()} & stems)
    return found, len(discussed), sum(1 for s in discussed if s["verified"])


def print_followup(inputs: dict[str, TranscriptResult]) -> None:
    """Last session's plan in the next draft (code, no model): what facts.json says was followed up."""
    sessions = json.loads((SPEECH / "series" / "facts.json").read_text())["sessions"]
    pairs = [("week1", "week2"), ("week2", "week3")]
    print("\n4. From last session (the previous plan matched in the next transcript, by code)")
    for label, results in (("reference lines", {n: reference_result(n) for n in SERIES}),
                           ("the drafted transcripts", inputs)):
        found = expected = said = kept = 0
        for before, after in pairs:
            lines = facts.transcript_lines(results[after].segments)
            one = followup_found(sessions[before]["plan"], sessions[after]["followed_up"], lines)
            found, said, kept = found + one[0], said + one[1], kept + one[2]
            expected += len(sessions[after]["followed_up"])
        print(f"   {label:<24} followed-up topics found {found} of {expected}; "
              f"items said discussed {said}, citations kept by the check {kept} of {said}")


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    """Baseline, drafting in a child process, then the three tables."""
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-") as tmp:
        root = Path(tmp)
        cfg = bench_config(root)
        # The baseline transcribes only: the drafting is measured in its own process.
        baseline = transcribe(bench_config(root, "none"), ("week1",) if QUICK else tuple(SESSIONS))
        inputs = ({n: reference_result(n) for n in SERIES} if QUICK
                  else {n: result for n, (result, _, _) in baseline.items()})
        data = run_drafting(root, cfg, inputs)
        print_speed(data, baseline)
        print_projection(cfg, data)
        print_quality(data, inputs)
        print_followup(inputs)


if __name__ == "__main__":
    main()
