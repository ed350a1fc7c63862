"""Session facts from transcript lines: silences, metrics, bookmarks.

Inputs are transcript segments: dicts or objects with ``start``, ``end`` (seconds),
``speaker`` and ``text``. Plain text processing (stdlib only); nothing leaves the
device. :func:`transcript_lines` validates and orders them for every notes module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The result types live with the transcript result; imported here, where they are made.
from appliance.transcript import Metrics, Silence

UNKNOWN_SPEAKER = "Unknown"


# --- segments ---------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One transcript line, with its index in the input."""

    index: int
    start: float
    end: float
    speaker: str
    text: str


def _get(segment: Any, name: str, default: Any = None) -> Any:
    if isinstance(segment, Mapping):
        return segment.get(name, default)
    return getattr(segment, name, default)


def transcript_lines(segments: Iterable[Any]) -> list[Line]:
    """Validated segments in time order, remembering each one's index in the input."""
    result = []
    for index, segment in enumerate(segments):
        if _get(segment, "start") is None or _get(segment, "end") is None:
            raise ValueError(f"segment {index} needs a start and an end time in seconds")
        start, end = float(_get(segment, "start")), float(_get(segment, "end"))
        if end < start:
            raise ValueError(f"segment {index} ends before it starts: start {start}, end {end}")
        speaker = _get(segment, "speaker") or UNKNOWN_SPEAKER
        result.append(Line(index, start, end, str(speaker), str(_get(segment, "text", "") or "")))
    return sorted(result, key=lambda s: (s.start, s.end))


def _speech_spans(segments: Sequence[Line]) -> list[tuple[float, float]]:
    """The union of segment times, sorted."""
    spans: list[tuple[float, float]] = []
    for segment in segments:
        if spans and segment.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], segment.end))
        else:
            spans.append((segment.start, segment.end))
    return spans


# --- silences ----------------------------------------------------------------------


def _gaps(segments: Sequence[Line], duration_s: float) -> list[Silence]:
    """Every gap between speech, including before the first and after the last word."""
    cursor, gaps = 0.0, []
    for start, end in _speech_spans(segments):
        if start > cursor:
            gaps.append(Silence(cursor, min(start, duration_s)))
        cursor = max(cursor, end)
    if duration_s > cursor:
        gaps.append(Silence(cursor, duration_s))
    return [g for g in gaps if g.end > g.start]


def find_silences(segments: Iterable[Any], duration_s: float, threshold_s: float) -> list[Silence]:
    """Gaps in speech longer than ``threshold_s``, the recording's start and end included."""
    if threshold_s <= 0:
        raise ValueError(f"threshold_s must be > 0 seconds, got {threshold_s}")
    if duration_s < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    return [g for g in _gaps(transcript_lines(segments), duration_s) if g.duration > threshold_s]


# --- metrics -----------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def _word_count(text: str) -> int:
    return len(_WORD.findall(text))


def compute_metrics(segments: Iterable[Any], duration_s: float, silences: Sequence[Silence]) -> Metrics:
    """Talk time and share per speaker, speaking rates, turns, words and silences."""
    segs = transcript_lines(segments)
    talk = {name: sum(e - s for s, e in _speech_spans([g for g in segs if g.speaker == name]))
            for name in dict.fromkeys(g.speaker for g in segs)}
    total_talk = sum(talk.values())
    words = {name: sum(_word_count(g.text) for g in segs if g.speaker == name) for name in talk}
    rates = {name: _rate(words[name], talk[name]) for name in talk}
    rates["overall"] = _rate(sum(words.values()), total_talk)
    gaps = _gaps(segs, duration_s)
    longest = max([g.duration for g in gaps] + [s.duration for s in silences] + [0.0])
    return Metrics(
        duration_s=float(duration_s),
        talk_time_s={name: round(t, 2) for name, t in talk.items()},
        talk_share={name: (t / total_talk if total_talk else 0.0) for name, t in talk.items()},
        longest_silence_s=round(longest, 2),
        words_per_minute=rates,
        turns=_turns(segs),
        word_count=sum(words.values()),
        words=words,
        silence_count=len(silences),
        silence_total_s=round(sum(s.duration for s in silences), 2),
    )


def _rate(words: int, seconds: float) -> float:
    return round(60.0 * words / seconds, 1) if seconds > 0 else 0.0


def _turns(segments: Sequence[Line]) -> int:
    speakers = [s.speaker for s in segments]
    return sum(1 for i, name in enumerate(speakers) if i == 0 or name != speakers[i - 1])


# --- bookmarks ---------------------------------------------------------------------

_SNIPPET_CHARS = 120


def align_bookmarks(bookmarks: Iterable[float], segments: Iterable[Any]) -> list[dict]:
    """Each bookmark with the segment it points at: the one under the mark, else the
    last one before it (the clinician presses after hearing something).

    Returns ``{"offset", "segment_index", "speaker", "snippet"}`` dicts in time
    order; ``segment_index`` is the position in ``segments`` as given, or None
    (with an empty snippet) for a mark before any speech.
    """
    segs = transcript_lines(segments)
    aligned = []
    for offset in sorted(float(b) for b in bookmarks):
        if offset < 0:
            raise ValueError(f"bookmark offsets must be >= 0 seconds, got {offset}")
        before = [s for s in segs if s.start <= offset]
        target = max(before, key=lambda s: (s.start, s.end)) if before else None
        aligned.append({
            "offset": offset,
            "segment_index": target.index if target else None,
            "speaker": target.speaker if target else None,
            "snippet": _snippet(target.text) if target else "",
        })
    return aligned


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1].rstrip() + "…"


