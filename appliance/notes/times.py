"""Times and lengths as people read them, one rule for the note, the page and the export.

Positions and lengths are cut to whole seconds, as a media player shows
them: a bookmark at 18.7 s reads 0:18 in the transcript, in the note and in
the export alike, and a 104.6 s session is "1 min 44 s" beside its "1:44".
A stretch shown by its two ends (a silence "0:48–1:00") is as long as those
ends say (:func:`span`), so "0:48–1:00 (12 s)" never reads "(11 s)".
"""

from __future__ import annotations


def whole_seconds(seconds: float | None) -> int:
    """The one rounding rule: down to a whole second, never below zero."""
    try:
        return max(0, int(seconds or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def clock(seconds: float | None) -> str:
    """A position in a recording: 4:05 or 1:02:03."""
    hours, rest = divmod(whole_seconds(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def length(seconds: float | None) -> str:
    """A length: 45 s, 1 min 44 s, 50 min, 1 h 5 min 3 s (the same seconds as :func:`clock`)."""
    hours, rest = divmod(whole_seconds(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "",
             f"{secs} s" if secs or not (hours or minutes) else ""]
    return " ".join(part for part in parts if part)


def span(start: float, end: float) -> str:
    """The length of the stretch from ``start`` to ``end`` as its two clock times show it."""
    return length(span_seconds(start, end))


def span_seconds(start: float, end: float) -> int:
    """Whole seconds between the clock times of ``start`` and ``end``."""
    return max(0, whole_seconds(end) - whole_seconds(start))
