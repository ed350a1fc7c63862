"""What follows from a transcript's lines: silences, metrics, risk flags, bookmarks.

One function for both places that need it: the transcription pipeline, when
the lines are first recognised, and a correction of the lines
(:mod:`appliance.notes.corrections`), so a corrected transcript is measured
and flagged exactly as a recognised one would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.notes import facts, risk
from appliance.transcript import Bookmark, Metrics, RiskFlag, Segment, Silence


@dataclass(frozen=True)
class Derived:
    """The facts of a list of lines.

    ``silences`` are exact (the metrics and the draft note use them so);
    :attr:`stored_silences` are as a result stores them. ``flags`` is None when
    risk flags are turned off.
    """

    silences: tuple[Silence, ...]
    metrics: Metrics
    flags: tuple[RiskFlag, ...] | None
    bookmarks: tuple[Bookmark, ...]

    @property
    def stored_silences(self) -> tuple[Silence, ...]:
        """The silences rounded to hundredths, as the stored result keeps them."""
        return tuple(Silence(round(x.start, 2), round(x.end, 2)) for x in self.silences)


def derive(segments: Sequence[Segment], duration_s: float, *, bookmarks: Sequence[float] = (),
           gaps: Sequence[Sequence[float]] = (), silence_threshold_s: float,
           risk_flags: bool = True) -> Derived:
    """Silences, metrics, risk flags and aligned bookmarks of ``segments``.

    ``bookmarks`` are offsets in seconds (clamped to the recording); ``gaps``
    are ``(start, end)`` stretches that could not be read, where no silence is
    claimed.
    """
    silences = facts.find_silences(segments, duration_s, silence_threshold_s)
    # Unreadable audio is not known to be silent.
    silences = [x for x in silences if not any(x.start < e and s < x.end for s, e in gaps)]
    marks = facts.align_bookmarks([min(max(0.0, b), duration_s) for b in bookmarks], segments)
    return Derived(
        silences=tuple(silences),
        metrics=facts.compute_metrics(segments, duration_s, silences),
        flags=tuple(risk.find_risk_flags(segments)) if risk_flags else None,
        bookmarks=tuple(Bookmark(m["offset"], m["segment_index"], m["speaker"], m["snippet"],
                                 m["snippet"]) for m in marks))
