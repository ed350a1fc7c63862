"""Transcription: the Holdnote pipeline against bare faster-whisper, in one run.

Run as ``python -m tests.bench transcribe`` (or ``make bench``). Reads
../shared/testdata/speech. Prints:

1. Speed and accuracy: the whole pipeline (decode, Silero VAD, Whisper with the
   guards and the coverage check, speaker labels, notes) in both decoding modes
   against bare ``WhisperModel.transcribe(audio, vad_filter=True)`` with the
   same model and threads, on the same audio. Throughput ratio = bare wall time
   / pipeline wall time on a 10-minute mix of the test recordings (best of 2,
   interleaved, since other processes share the CPU). WER per file and pooled
   against the reference texts (jfk, the dialogues).
2. Diarization error rate (collar 0.25 s) of the pipeline's labelled lines per
   file and method: two lavaliers (stereo energy) and one room microphone
   (clustering; the AMI clips with their reference number of speakers).
3. Peak memory (peak RSS of the transcription job process: the real
   ``holdnote transcribe --session`` on an age-encrypted recording) for a
   10-minute and a 2-hour recording made by concatenating the test files, with
   the default sequential decoding, and the 10-minute one batched for comparison.

``HOLDNOTE_BENCH_QUICK=1``: 2 and 20 minutes instead of 10 and 120, one repeat.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance import age  # noqa: E402
from appliance.access.keys import KeyStore  # noqa: E402
from appliance.store.db import State, Storage  # noqa: E402
from appliance.transcript import TranscriptResult  # noqa: E402
from appliance.transcription import asr, commands  # noqa: E402
from appliance.transcription.reader import RATE, open_audio  # noqa: E402
from tests.support import der  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "testdata" / "speech"
QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
REPEATS = 1 if QUICK else 2
JFK = ("And so my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")
WER_FILES = ("jfk.flac", "dialogue/sleep.mono.wav", "dialogue/quiet.mono.wav",
             "dialogue/sleep.stereo.wav", "dialogue/quiet.stereo.wav")
AMI = ("dev00", "dev01", "trn01", "trn02", "trn03", "trn04", "trn05")


# --- helpers ---------------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def reference_text(name: str) -> str:
    if name == "jfk.flac":
        return normalise(JFK)
    stem = Path(name).name.split(".")[0]
    lines = (SPEECH / "dialogue" / f"{stem}.txt").read_text().splitlines()
    return normalise(" ".join(line.split("\t")[3] for line in lines))


def mono(path: Path) -> np.ndarray:
    with open_audio(path) as reader:
        return reader.read(RATE * 3600).mean(axis=1)


def wer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.wer(ref, hyp) if ref else 0.0


def config(root: Path, **transcription):
    from tests.conftest import make_config

    return make_config(root, transcription={"model": "bundled-tiny", **transcription},
                       security={"scrypt_work_factor": 10})


def cpu_seconds() -> float:
    """User + system time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    function()
    return time.perf_counter() - wall, cpu_seconds() - cpu


# --- 1. speed and accuracy ----------------------------------------------------------------------


class Systems:
    """Bare faster-whisper and the pipeline in both modes, over one loaded model."""

    def __init__(self, model, root: Path):
        self.model = model
        self.root = root
        self.recognizers = {mode: asr.Recognizer(model, asr.AsrOptions(batched=mode == "batched"),
                                                 "tiny.en") for mode in ("batched", "sequential")}

    def bare(self, path: Path) -> str:
        from faster_whisper import decode_audio

        segments, _ = self.model.transcribe(decode_audio(str(path)), vad_filter=True,
                                            beam_size=5, language="en")
        return " ".join(s.text for s in segments)

    def pipeline(self, path: Path, mode: str, **kwargs) -> TranscriptResult:
        return commands.transcribe_file(config(self.root / mode), path,
                                          recognizer=self.recognizers[mode], **kwargs)


def accuracy(systems: Systems) -> dict[str, dict]:
    """WER per file and pooled for each system; the pipeline results are kept for DER."""
    refs, hyps, results = [], {"bare": [], "batched": [], "sequential": []}, {}
    for name in WER_FILES:
        path = SPEECH / name
        refs.append(reference_text(name))
        hyps["bare"].append(normalise(systems.bare(path)))
        for mode in ("batched", "sequential"):
            results[(name, mode)] = systems.pipeline(path, mode)
            lines = results[(name, mode)].segments
            hyps[mode].append(normalise(" ".join(s.text for s in lines)))
    table = {system: {"files": [wer(r, h) for r, h in zip(refs, texts)],
                      "pooled": wer(" ".join(refs), " ".join(texts))}
             for system, texts in hyps.items()}
    return {"wer": table, "results": results}


SYSTEMS = ("bare", "batched", "sequential")


def speed(systems: Systems, mix: Path) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each system on the same mix, runs interleaved.

    CPU time is reported beside wall time because other processes may share
    the cores: it is the steadier measure of the work each system does.
    """
    best = {system: (float("inf"), float("inf")) for system in SYSTEMS}
    for _ in range(REPEATS):
        for system in SYSTEMS:
            run = (lambda: systems.bare(mix)) if system == "bare" else (
                lambda s=system: systems.pipeline(mix, s))
            wall, cpu = timed(run)
            best[system] = (min(best[system][0], wall), min(best[system][1], cpu))
    return best


def print_speed_and_accuracy(times: dict, table: dict, minutes: float) -> None:
    print(f"\n1. Pipeline vs bare faster-whisper (tiny.en int8, {asr.cpu_threads(0)} threads)")
    print(f"   throughput on a {minutes:.0f}-min mix (x real time by wall clock and by CPU time;"
          " ratio = pipeline / bare):")
    wall0, cpu0 = times["bare"]
    for system in SYSTEMS:
        wall, cpu = times[system]
        print(f"     {system:<11} wall {minutes * 60 / wall:6.1f}x  ratio {wall0 / wall:4.2f}"
              f"   CPU {minutes * 60 / cpu:6.1f}x  ratio {cpu0 / cpu:4.2f}")
    print("   WER % per file (" + ", ".join(Path(n).name for n in WER_FILES) + ") and pooled:")
    for system in SYSTEMS:
        files = " ".join(f"{100 * w:5.1f}" for w in table[system]["files"])
        delta = 100 * (table[system]["pooled"] - table["bare"]["pooled"])
        print(f"     {system:<11} {files}   pooled {100 * table[system]['pooled']:5.1f}"
              + (f" ({delta:+.1f} points vs bare)" if system != "bare" else ""))


# --- 2. peak memory ---------------------------------------------------------------------------


def write_mix(path: Path, minutes: float, channels: int = 1) -> Path:
    """A recording of ``minutes`` made by repeating the test files, as a 16 kHz WAV."""
    import wave

    sources = [mono(SPEECH / "ami_debug" / f"{n}.wav") for n in AMI]
    sources += [mono(SPEECH / "dialogue" / f"{n}.mono.wav") for n in ("sleep", "quiet")]
    sources.append(mono(SPEECH / "jfk.flac"))
    total, written = int(minutes * 60 * RATE), 0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(RATE)
        while written < total:
            for audio in sources:
                part = audio[: total - written]
                pcm = (np.clip(part, -1, 1) * 32767).astype("<i2")
                out.writeframes(np.repeat(pcm[:, None], channels, axis=1).tobytes())
                written += len(part)
                if written >= total:
                    break
    return path


def encrypted_session(root: Path, wav: Path, window: float,
                      batched: bool = False) -> tuple[Path, int]:
    """A data directory with unlocked keys and one recorded session holding ``wav``."""
    cfg = config(root)
    storage = Storage(cfg.paths.data_dir)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    keys.init("bench", "correct horse battery staple")
    session = storage.create_session()
    with open(wav, "rb") as src, age.StreamWriter(session.audio_path, [keys.recipient()]) as out:
        src.read(44)
        from appliance.recorder.capture import AudioFormat, wav_header

        out.write(wav_header(AudioFormat()))
        while block := src.read(1 << 20):
            out.write(block)
    seconds = (wav.stat().st_size - 44) / (2 * RATE)
    storage.transition(session.id, State.RECORDED, duration_s=seconds)
    toml = root / "holdnote.toml"
    toml.write_text(
        f'[paths]\ndata_dir = "{cfg.paths.data_dir}"\nruntime_dir = "{cfg.paths.runtime_dir}"\n'
        f'recorder_socket = "{cfg.paths.recorder_socket}"\n'
        f'[transcription]\nmodel = "bundled-tiny"\nwindow_minutes = {window}\n'
        f'batched = {"true" if batched else "false"}\n'
        '[security]\nscrypt_work_factor = 10\n')
    return toml, session.id


# Runs the real command line in the child and records the child's own peak RSS:
# ru_maxrss from wait4() would also count the parent's pages copied at fork.
_PROBE = ("import sys; from appliance.app.cli import main; code = main(sys.argv[2:]); "
          "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'));"
          "open(sys.argv[1], 'w').write(peak.split()[1]); sys.exit(code)")


def job_peak(root: Path, minutes: float, window: float,
             batched: bool = False) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``holdnote transcribe --session`` on a recording."""
    root.mkdir(parents=True, exist_ok=True)
    wav = write_mix(root / "mix.wav", minutes)
    toml, session_id = encrypted_session(root, wav, window, batched)
    wav.unlink()
    peak_file = root / "peak.txt"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PROBE, str(peak_file), "--config", str(toml),
                           "transcribe", "--session", str(session_id)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the transcription job failed on the {minutes:.0f}-min recording")
    return int(peak_file.read_text()) / 1024, elapsed


def print_memory(peaks: list[tuple[str, float, tuple[float, float]]], window: float) -> None:
    print(f"\n3. Peak memory of the transcription job (age-encrypted recording, "
          f"{window:g}-min windows)")
    for mode, length, (rss, seconds) in peaks:
        print(f"     {length:5.0f} min {mode:<11} peak RSS {rss:6.0f} MiB"
              f"   {length * 60 / seconds:5.1f}x real time")
    short, long = peaks[0][2][0], peaks[1][2][0]
    print(f"     ratio long/short (sequential) {long / short:.3f} (target at most 1.10)")


# --- 3. diarization error rate ------------------------------------------------------------------


def turns_of(result: TranscriptResult) -> list:
    return [der.Turn(s.start, s.end, s.speaker) for s in result.segments]


def diarization(systems: Systems, results: dict) -> list[tuple[str, str, float]]:
    rows = []
    for name in ("sleep", "quiet"):
        ref = der.parse_rttm(SPEECH / "dialogue" / f"{name}.rttm")[name]
        for kind, method in (("stereo", "two lavaliers (channel energy)"),
                             ("mono", "room mic (clustering)")):
            result = results[(f"dialogue/{name}.{kind}.wav", "batched")]
            rows.append((f"{name}.{kind}", method, der.der(ref, turns_of(result)).der))
    references = {**der.parse_rttm(SPEECH / "ami_debug" / "train.rttm"),
                  **der.parse_rttm(SPEECH / "ami_debug" / "development.rttm")}
    for name in AMI:
        ref = references.get(name, [])
        count = max(1, len({t.speaker for t in ref}))
        result = systems.pipeline(SPEECH / "ami_debug" / f"{name}.wav", "batched", speakers=count)
        rows.append((f"ami {name}", f"room mic (clustering, {count} speakers)",
                     der.der(ref, turns_of(result)).der))
    return rows


def print_diarization(rows) -> None:
    print("\n2. Diarization error rate of the transcript lines (collar 0.25 s)")
    for name, method, value in rows:
        print(f"     {name:<14} {method:<36} DER {100 * value:5.1f} %")


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    """Run all three parts in one invocation and print the figures."""
    short_min, long_min = (2, 20) if QUICK else (10, 120)
    window = 1.0 if QUICK else 10.0  # both recordings span several windows
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-") as tmp:
        root = Path(tmp)
        choice = asr.resolve_model(config(root).transcription, root)
        systems = Systems(asr.load_model(choice, "int8", 0), root)
        measured = accuracy(systems)
        mix = write_mix(root / "mix10.wav", short_min)
        print_speed_and_accuracy(speed(systems, mix), measured["wer"], short_min)
        print_diarization(diarization(systems, measured["results"]))
        del systems
        runs = [("sequential", short_min, False), ("sequential", long_min, False),
                ("batched", short_min, True)]
        peaks = [(mode, m, job_peak(root / f"job-{mode}-{m}", m, window, batched))
                 for mode, m, batched in runs]
        print_memory(peaks, window)


if __name__ == "__main__":
    main()
