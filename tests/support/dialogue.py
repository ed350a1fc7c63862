"""The synthetic dialogues' reference transcripts, for the notes tests."""

from __future__ import annotations

from pathlib import Path

DURATIONS = {"sleep": 104.35, "quiet": 143.41}


def transcript(testdata: Path, name: str) -> list[dict]:
    text = (testdata / "speech" / "dialogue" / f"{name}.txt").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines()]
    return [{"start": float(s), "end": float(e), "speaker": who, "text": words} for s, e, who, words in rows]


def said(text: str, speaker: str = "Client", start: float = 0.0) -> dict:
    return {"start": start, "end": start + 2.0, "speaker": speaker, "text": text}


