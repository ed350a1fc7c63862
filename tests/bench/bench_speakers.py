"""Speaker labelling: diarization error rate per file and method, and CPU cost.

Run as ``python tests/bench/bench_speakers.py`` (or ``make bench``). Reads
../shared/testdata/speech. For every file it scores (DER, collar 0.25 s):

- stereo energy      diarize_stereo on the two-lavalier recording (dialogues only)
- mono ref regions   diarize_mono given the reference's union of speech
- mono energy VAD    diarize_mono given speech_regions() of the audio
- mono coarse        reference speech bridged over gaps < 2 s and padded 0.4 s,
                     which is what Silero VAD with faster-whisper's defaults gives

AMI clips use the reference's number of speakers. Their references for trn01 and
trn02 mark only about 1 s of the 20 s or so of audible speech, so their energy-VAD
and coarse rows are mostly "false alarm" on speech nobody annotated.

CPU is process time (all threads) per minute of audio for the labelling alone.
``HOLDNOTE_BENCH_QUICK=1`` shortens the long-session run.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from faster_whisper import decode_audio  # noqa: E402

from appliance.transcription import speakers  # noqa: E402
from tests.support.der import DerResult, der, parse_rttm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "testdata" / "speech"
DIALOGUES = ("sleep", "quiet")
AMI = ("dev00", "dev01", "trn01", "trn02", "trn03", "trn04", "trn05")
NAMES = {"clinician": speakers.CLINICIAN, "client": speakers.CLIENT}


def union(turns) -> list[tuple[float, float]]:
    """The reference's speech regions: its turns merged."""
    spans: list[tuple[float, float]] = []
    for turn in sorted(turns, key=lambda t: t.start):
        if spans and turn.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], turn.end))
        else:
            spans.append((turn.start, turn.end))
    return spans


def coarse(regions, gap_s: float = 2.0, pad_s: float = 0.4) -> list[tuple[float, float]]:
    """Regions as Silero VAD with faster-whisper's defaults would give them."""
    spans: list[tuple[float, float]] = []
    for start, end in regions:
        start, end = max(0.0, start - pad_s), end + pad_s
        if spans and start - spans[-1][1] < gap_s:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def timed(function, *args, **kwargs):
    started = time.process_time()
    result = function(*args, **kwargs)
    return result, time.process_time() - started


def row(name: str, speakers_n: int, method: str, result: DerResult, cpu_s: float, minutes: float) -> dict:
    print(
        f"{name:8s} {speakers_n:3d}  {method:18s} {result.der:8.1%} {result.missed:8.2f} "
        f"{result.false_alarm:8.2f} {result.confusion:8.2f} {result.total:8.2f} {cpu_s / minutes:9.2f}"
    )
    return {"file": name, "method": method, "der": result.der, "cpu_per_min": cpu_s / minutes}


def header() -> None:
    print(f"{'file':8s} {'spk':>3s}  {'method':18s} {'DER':>8s} {'missed':>8s} {'false al':>8s} "
          f"{'confus.':>8s} {'scored':>8s} {'cpu s/min':>9s}")
    print("-" * 88)


def mono_rows(name: str, audio: np.ndarray, reference, count: int) -> list[dict]:
    minutes = len(audio) / speakers.SAMPLE_RATE / 60
    regions = {"mono ref regions": union(reference)}
    vad, vad_cpu = timed(speakers.speech_regions, audio)
    regions["mono energy VAD"] = vad
    regions["mono coarse"] = coarse(union(reference))
    rows = []
    for method, spans in regions.items():
        turns, cpu = timed(speakers.diarize_mono, audio, spans, count)
        cpu += vad_cpu if method == "mono energy VAD" else 0.0
        rows.append(row(name, count, method, der(reference, turns), cpu, minutes))
    return rows


def dialogue_rows(name: str) -> list[dict]:
    reference = parse_rttm(SPEECH / "dialogue" / f"{name}.rttm")[name]
    left, right = decode_audio(str(SPEECH / "dialogue" / f"{name}.stereo.wav"), split_stereo=True)
    minutes = len(left) / speakers.SAMPLE_RATE / 60
    turns, cpu = timed(speakers.diarize_stereo, left, right, "left")
    named = [speakers.Turn(t.start, t.end, NAMES[t.speaker]) for t in reference]
    rows = [row(name, 2, "stereo energy", der(named, turns), cpu, minutes)]
    mono = decode_audio(str(SPEECH / "dialogue" / f"{name}.mono.wav"))
    return rows + mono_rows(name, mono, reference, 2)


def ami_rows(name: str, references: dict) -> list[dict]:
    reference = references[name]
    audio = decode_audio(str(SPEECH / "ami_debug" / f"{name}.wav"))
    return mono_rows(name, audio, reference, len({t.speaker for t in reference}))


def enrollment_check() -> None:
    """Name the clinician in each mono dialogue from a lavalier sample of their voice."""
    print("\nclinician enrollment (voice from the stereo file's clinician turns, mono recording):")
    stranger = speakers.enroll(decode_audio(str(SPEECH / "jfk.flac")))
    for name in DIALOGUES:
        reference = parse_rttm(SPEECH / "dialogue" / f"{name}.rttm")[name]
        left, _ = decode_audio(str(SPEECH / "dialogue" / f"{name}.stereo.wav"), split_stereo=True)
        rate = speakers.SAMPLE_RATE
        sample = np.concatenate([left[int(t.start * rate) : int(t.end * rate)]
                                 for t in reference if t.speaker == "clinician"])
        mono = decode_audio(str(SPEECH / "dialogue" / f"{name}.mono.wav"))
        named = [speakers.Turn(t.start, t.end, NAMES[t.speaker]) for t in reference]
        for label, voice in (("clinician", speakers.enroll(sample)), ("stranger (JFK)", stranger)):
            turns = speakers.diarize_mono(mono, union(reference), 2, clinician_voice=voice)
            result = der(named, turns)
            correct = all(r == h for r, h in result.mapping if h in NAMES.values())
            labels = sorted({t.speaker for t in turns})
            verdict = "names right" if correct and speakers.CLINICIAN in labels else (
                "not named" if speakers.CLINICIAN not in labels else "WRONG NAMES")
            print(f"  {name:6s} enrolled {label:15s} -> {', '.join(labels):25s} {verdict}")


def long_session(minutes: float) -> None:
    """DER and CPU for a long recording: the sleep dialogue repeated."""
    mono = decode_audio(str(SPEECH / "dialogue" / "sleep.mono.wav"))
    reference = parse_rttm(SPEECH / "dialogue" / "sleep.rttm")["sleep"]
    length = len(mono) / speakers.SAMPLE_RATE
    copies = int(np.ceil(minutes * 60 / length))
    audio = np.tile(mono, copies)
    tiled = [speakers.Turn(t.start + i * length, t.end + i * length, t.speaker)
             for i in range(copies) for t in reference]
    regions, vad_cpu = timed(speakers.speech_regions, audio)
    turns, cpu = timed(speakers.diarize_mono, audio, regions, 2)
    minutes = len(audio) / speakers.SAMPLE_RATE / 60
    print(f"\nlong session: {minutes:.0f} min mono (sleep x{copies}), energy VAD regions: "
          f"DER {der(tiled, turns).der:.1%}; CPU per minute of audio: VAD {vad_cpu / minutes:.2f} s "
          f"+ labelling {cpu / minutes:.2f} s")


# References that mark only ~1 s of the ~20 s of audible speech; left out of the AMI* mean.
PARTLY_ANNOTATED = ("trn01", "trn02")


def summary(rows: list[dict]) -> None:
    print("\nmean DER by method (AMI* leaves out the partly annotated trn01, trn02):")
    groups = (("dialogues", DIALOGUES), ("AMI*", tuple(a for a in AMI if a not in PARTLY_ANNOTATED)))
    for method in dict.fromkeys(r["method"] for r in rows):
        for group, names in groups:
            scores = [r["der"] for r in rows if r["method"] == method and r["file"] in names]
            cpu = [r["cpu_per_min"] for r in rows if r["method"] == method and r["file"] in names]
            if scores:
                print(f"  {method:18s} {group:9s} {np.mean(scores):8.1%}   cpu {np.mean(cpu):.2f} s/min")


def main() -> int:
    if not SPEECH.is_dir():
        print(f"test data not found at {SPEECH}", file=sys.stderr)
        return 1
    quick = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
    references = {**parse_rttm(SPEECH / "ami_debug" / "train.rttm"),
                  **parse_rttm(SPEECH / "ami_debug" / "development.rttm")}
    header()
    rows = [r for name in DIALOGUES for r in dialogue_rows(name)]
    rows += [r for name in AMI for r in ami_rows(name, references)]
    summary(rows)
    enrollment_check()
    long_session(10.0 if quick else 30.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
