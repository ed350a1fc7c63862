"""The transcript as the session page shows it.

Segments, silences, bookmarks and unreadable stretches (gaps) are merged
into one timeline; every segment gets a ``t-<seconds>`` anchor (the first
segment of each second) so risk flags and search hits can link to the
moment. The stored result comes in as a
:class:`~appliance.transcript.TranscriptResult`, whose reader fills the gaps of
an old result, so a missing or odd key leaves a gap, never an error page.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from html import escape

from markupsafe import Markup

from appliance.notes import times
from appliance.transcript import Bookmark, Gap, Metrics, RiskFlag, Silence, TranscriptResult
from web_ui.views.formatting import clock, duration, flag_label

SPEAKER_CLASSES = 5


@dataclass(frozen=True)
class Line:
    """One row of the timeline."""

    kind: str  # "segment", "silence", "bookmark" or "gap"
    start: float
    end: float
    text: str
    speaker: str = ""
    css: str = ""
    anchor: str | None = None
    flagged: bool = False
    index: int = -1  # a segment's position in TranscriptResult.segments (-1 for other rows)


@dataclass(frozen=True)
class Flag:
    """A risk-language passage, linked to its moment in the transcript."""

    category: str
    label: str
    start: float
    speaker: str
    quote: str
    negated: bool
    anchor: str | None
    index: int = -1  # its position in TranscriptResult.flags (what a confirmation names)
    removed: bool = False  # a correction took it away; the clinician has yet to confirm


@dataclass(frozen=True)
class Talk:
    """One speaker's share of the session."""

    speaker: str
    css: str
    seconds: float
    share: float
    words_per_minute: float | None


@dataclass
class TranscriptView:
    """Everything the session page shows about the transcription result."""

    lines: list[Line] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    talk: list[Talk] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    speakers: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    salvaged: bool = False
    model: str = ""
    language: str = ""
    duration_s: float = 0.0


class _Speakers:
    """Stable colour classes: clinician, client, then Speaker 1, 2 … in order of appearance."""

    def __init__(self, clinician: str):
        self.clinician = clinician.casefold()
        self.classes: dict[str, str] = {}

    def css(self, name: str) -> str:
        if name not in self.classes:
            folded = name.casefold()
            if folded in (self.clinician, "clinician", "therapist"):
                self.classes[name] = "spk-clinician"
            elif folded == "client":
                self.classes[name] = "spk-client"
            else:
                others = sum(1 for c in self.classes.values() if c.startswith("spk-n"))
                self.classes[name] = f"spk-n{others % SPEAKER_CLASSES + 1}"
        return self.classes[name]


def build(result: TranscriptResult, clinician_name: str = "Clinician") -> TranscriptView:
    """The view of a stored transcription result."""
    speakers = _Speakers(clinician_name)
    starts = [segment.start for segment in result.segments]
    anchors = _anchors(starts)
    flags = _flags(result.flags, starts)
    flagged = {bisect.bisect_right(starts, f.start) - 1 for f in flags if not f.removed}
    lines: list[tuple[tuple, Line]] = []
    for index, segment in enumerate(result.segments):
        name = segment.speaker or "Speaker"
        lines.append(((segment.start, 1, index), Line(
            "segment", segment.start, segment.end, segment.text.strip(), name,
            speakers.css(name), anchors[index], index in flagged, index)))
    lines += _silences(result.silences)
    lines += _bookmarks(result.bookmarks, starts)
    lines += _gaps(result.gaps)
    lines.sort(key=lambda item: item[0])
    metrics = result.metrics
    return TranscriptView(
        lines=[line for _, line in lines], flags=flags, talk=_talk(metrics, speakers),
        metrics=asdict(metrics) if metrics is not None else {}, speakers=speakers.classes,
        warnings=[w for w in result.warnings if w], salvaged=result.salvaged,
        model=result.model, language=result.language or "",
        duration_s=result.duration_s or (metrics.duration_s if metrics is not None else 0.0))


def unreadable(reason: str) -> TranscriptView:
    """The view of a stored result that cannot be read: the page says why instead."""
    return TranscriptView(warnings=[f"The transcript cannot be shown: {reason}."])


def _anchors(starts: list[float]) -> list[str | None]:
    seen, anchors = set(), []
    for start in starts:
        second = int(start)
        anchors.append(None if second in seen else f"t-{second}")
        seen.add(second)
    return anchors


def anchor_for(seconds: float, starts: list[float]) -> str | None:
    """The anchor of the segment that contains ``seconds`` (or the nearest before it)."""
    if not starts:
        return None
    index = max(0, bisect.bisect_right(starts, seconds) - 1)
    return f"t-{int(starts[index])}"


def _flags(raw: tuple[RiskFlag, ...], starts: list[float]) -> list[Flag]:
    flags = [Flag(category=item.category, label=flag_label(item.category), start=item.start,
                  speaker=item.speaker, quote=item.quote or item.term, negated=item.negated,
                  anchor=anchor_for(item.start, starts), index=index, removed=item.removed)
             for index, item in enumerate(raw)]
    flags.sort(key=lambda f: f.start)
    return flags


def _silences(raw: tuple[Silence, ...]) -> list[tuple[tuple, Line]]:
    return [((item.start, 0, 0), Line("silence", item.start, item.end, "")) for item in raw]


def _gaps(raw: tuple[Gap, ...]) -> list[tuple[tuple, Line]]:
    # Before a segment that starts at the same moment: the reader meets the gap first.
    return [((item.start, 0, -1), Line("gap", item.start, item.end, "")) for item in raw]


def _bookmarks(raw: tuple[Bookmark, ...], starts: list[float]) -> list[tuple[tuple, Line]]:
    lines = []
    for item in raw:
        index = item.segment_index
        # Shown just before the segment it belongs to, so the reader meets the
        # marker first and then the words it marks.
        if index is not None and 0 <= index < len(starts):
            key = (starts[index], 0, index)
        else:
            key = (item.offset, 2, 0)
        lines.append((key, Line("bookmark", item.offset, item.offset, item.text, anchor=None)))
    return lines


def _talk(metrics: Metrics | None, speakers: _Speakers) -> list[Talk]:
    if metrics is None:
        return []
    seconds, shares, wpm = metrics.talk_time_s, metrics.talk_share, metrics.words_per_minute
    names = list(dict.fromkeys([*seconds, *shares]))
    return [Talk(n, speakers.css(n), seconds.get(n, 0.0), shares.get(n, 0.0),
                 wpm.get(n)) for n in names]


def start_key(seconds: float) -> str:
    """A segment's start as the page writes it (``data-start``), so a citation finds its line.

    Citations are exact copies of segment starts: the same float, written the same way
    on both sides (an integer start stored as ``83`` reads ``83.0`` too).
    """
    return repr(float(seconds))


def _line_html(line: Line, correct_href: str | None = None) -> str:
    if line.kind == "segment":
        anchor = f' id="{line.anchor}"' if line.anchor else ""
        flagged = " flagged" if line.flagged else ""
        fix = (f'<a class="fix no-print" href="{escape(correct_href)}{line.index}" '
               f'data-testid="correct-line">Correct</a>' if correct_href else "")
        return (f'<li class="seg {line.css}{flagged}"{anchor} data-start="{start_key(line.start)}" '
                f'data-index="{line.index}"><a class="ts" '
                f'href="#t-{int(line.start)}">{clock(line.start)}</a><span class="spk">'
                f'{escape(line.speaker)}</span><p class="txt">{escape(line.text)}</p>{fix}</li>')
    if line.kind == "silence":
        return (f'<li class="silence" data-testid="silence"><span>Silence, '
                f'{times.span(line.start, line.end)}</span> <span class="ts">'
                f'{clock(line.start)}</span></li>')
    if line.kind == "gap":
        length = line.end - line.start
        amount = duration(length) if length >= 0.5 else "under 1 s"
        # Laid out like a silence, in the error colour: a hole in the record, not a pause.
        return (f'<li class="silence gap" data-testid="gap"><strong class="text-error">{amount} '
                f'unreadable at {clock(line.start)}</strong> (damaged on the storage)</li>')
    note = f" · {escape(line.text)}" if line.text else ""
    return (f'<li class="bookmark" data-testid="bookmark"><span>Bookmark at '
            f'{clock(line.start)}</span>{note}</li>')


def timeline_html(view: TranscriptView, correct_href: str | None = None) -> Markup:
    """The timeline's list items, every client word escaped.

    With ``correct_href`` (the line edit page's address without its index),
    each line links to its correction. Built here rather than in the template
    because a two-hour session has about 1,500 lines and Jinja's per-line
    overhead would dominate the page.
    """
    return Markup("\n".join(_line_html(line, correct_href)  # noqa: S704 - _line_html escapes
                             for line in view.lines))
