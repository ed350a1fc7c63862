"""Helpers of the speakers bench: one Whisper pass per file, transcript lines, scoring, cost.

- :func:`transcribe`: the real :class:`~appliance.transcription.pipeline.Pipeline`
  up to its :class:`~appliance.transcription.pipeline.Progress` (Whisper words,
  Silero regions, CAM++ embeddings or stereo turns), with the CPU time of the
  embeddings apart from the rest;
- :func:`line_turns`: the transcript lines the pipeline makes from given speaker
  turns (``pipeline._lines``, called, not copied), as turns to score;
- :func:`peak_rss`: the peak resident memory a call adds (Linux ``VmHWM``, reset
  through ``/proc/self/clear_refs`` before the call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from appliance.transcription import asr, pipeline, speakers
from appliance.transcription.reader import RATE, open_audio
from appliance.transcription.speakers import Turn

MIB = 1024 * 1024


def recognizer() -> asr.Recognizer:
    """Whisper tiny.en from the bundled package, int8 on the CPU, as ``bench_transcribe`` loads it."""
    choice = asr.resolve_model(SimpleNamespace(model_dir=None, model=asr.BUNDLED), Path("."))
    loaded = asr.Recognizer(asr.load_model(choice, "int8", 0), asr.AsrOptions(), "tiny.en")
    loaded.warm_up()
    return loaded


class _TimedPipeline(pipeline.Pipeline):
    """The pipeline, noting the CPU time its embeddings and its ending take."""

    embed_cpu = 0.0
    finish_cpu = 0.0

    def _embed(self, progress, mono, regions, base):
        started = time.process_time()
        super()._embed(progress, mono, regions, base)
        self.embed_cpu += time.process_time() - started

    def finish(self, *args, **kwargs):
        started = time.process_time()
        result = super().finish(*args, **kwargs)
        self.finish_cpu += time.process_time() - started
        return result


@dataclass
class Pass:
    """One file through the pipeline: its state, audio and CPU seconds (all threads)."""

    progress: pipeline.Progress
    audio: np.ndarray  # 16 kHz mono, as the pipeline mixes it
    asr_cpu: float  # VAD + Whisper (+ stereo turns): the run less embeddings and ending
    embed_cpu: float  # CAM++ embeddings of the mono windows

    @property
    def minutes(self) -> float:
        """Length of the audio in minutes."""
        return len(self.audio) / RATE / 60


def transcribe(whisper: asr.Recognizer, path: Path) -> Pass:
    """One pipeline run over ``path`` (one window: the test files are a few minutes long)."""
    runner = _TimedPipeline(whisper, pipeline.Settings(window_s=3600.0))
    progress = pipeline.Progress()
    started = time.process_time()
    with open_audio(path) as reader:
        runner.run(reader, progress)
    total = time.process_time() - started
    return Pass(progress, load_mono(path), total - runner.embed_cpu - runner.finish_cpu, runner.embed_cpu)


def line_turns(progress: pipeline.Progress, turns: Sequence[Turn]) -> list[Turn]:
    """The transcript lines the pipeline makes from ``turns``, each as a turn of its speaker."""
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    return [Turn(s.start, s.end, s.speaker) for s in pipeline._lines(progress.pieces, ordered, str)]


def silero_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """Silero VAD speech regions in seconds, as the pipeline finds them."""
    return [(s / RATE, e / RATE) for s, e in asr.speech_regions(audio)]


def timed(function: Callable, *args, **kwargs):
    """``(result, CPU seconds of this process)`` of one call."""
    started = time.process_time()
    result = function(*args, **kwargs)
    return result, time.process_time() - started


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def peak_rss(function: Callable, *args, **kwargs):
    """``(result, MiB)``: how far the process's resident memory rose above its level before the call.

    Counts native allocations too (onnxruntime, BLAS), which tracemalloc would not.
    """
    pipeline.release_memory()  # freed heap reused by the call would hide its peak
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM, the peak, to the current resident size
    before = _status_kib("VmRSS")
    result = function(*args, **kwargs)
    return result, (_status_kib("VmHWM") - before) / 1024


def tiled(audio: np.ndarray, reference: Sequence[Turn], minutes: float) -> tuple[np.ndarray, list[Turn]]:
    """``audio`` repeated to at least ``minutes``, and its reference repeated with it."""
    length = len(audio) / RATE
    copies = int(np.ceil(minutes * 60 / length))
    turns = [Turn(t.start + i * length, t.end + i * length, t.speaker)
             for i in range(copies) for t in reference]
    return np.tile(audio, copies), turns


def install_mib(paths: Sequence[Path]) -> float:
    """Size on disk of files and directory trees, in MiB."""
    files = [p for path in paths for p in ([path] if path.is_file() else path.rglob("*"))]
    return sum(p.stat().st_size for p in files if p.is_file()) / MIB


def speaker_names(turns: Sequence[Turn]) -> list[str]:
    """Speakers in order of first appearance."""
    return list(dict.fromkeys(t.speaker for t in turns if t.speaker != speakers.UNKNOWN))


def load_mono(path: Path) -> np.ndarray:
    """A file's audio at 16 kHz, channels mixed."""
    with open_audio(path) as reader:
        return reader.read(RATE * 3600).mean(axis=1)


def load_channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A stereo file's left and right channels at 16 kHz."""
    with open_audio(path) as reader:
        both = reader.read(RATE * 3600)
    return both[:, 0].copy(), both[:, 1].copy()


def profile(channel: np.ndarray, reference: Sequence[Turn], speaker: str) -> np.ndarray:
    """A voice profile enrolled from ``speaker``'s reference turns on one lavalier channel."""
    sample = np.concatenate([channel[int(t.start * RATE): int(t.end * RATE)]
                             for t in reference if t.speaker == speaker])
    return speakers.enroll(sample, regions=silero_regions(sample))


def naming_verdict(reference: Sequence[Turn], turns: Sequence[Turn], voices, truth) -> str:
    """For each enrolled name: "right", "not named" or "WRONG" (named someone else or a stranger's name).

    ``truth`` gives each name's reference speaker (None for a stranger); the
    speaker a label stands for is the one the DER mapping pairs it with.
    """
    from tests.support.der import der

    shown = {t.speaker for t in turns}
    stands_for = {hyp: ref for ref, hyp in der(reference, turns).mapping}
    verdicts = []
    for name in voices:
        if name not in shown:
            verdict = "not named"
        elif truth[name] is not None and stands_for.get(name) == truth[name]:
            verdict = "right"
        else:
            verdict = "WRONG"
        verdicts.append(f"{name} {verdict}")
    return ", ".join(verdicts) + f" [{'/'.join(speaker_names(turns))}]"
