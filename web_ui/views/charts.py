"""Small line charts drawn on the server as SVG, for the client page.

No script and no style attribute (the pages' Content-Security-Policy allows
neither inline): the markup carries classes that web_ui/static/charts.css
styles. Every chart has a title (read out by screen readers) and comes with
its figures as a table in a ``<details>`` beside it. One session draws its
point and says there is no trend yet; no session draws nothing and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 480, 170
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 30  # room for the axes' labels
ONE_SESSION = "One session: no trend yet."
NO_SESSION = "No session has this figure yet."


@dataclass(frozen=True)
class ChartPoint:
    """One session's value: ``label`` for the axis (its date), None where it cannot be told."""

    label: str
    value: float | None
    note: str = ""  # why the value is missing, for the table


@dataclass(frozen=True)
class Chart:
    """A figure over the sessions: a title, the unit of its values, the points oldest first."""

    key: str
    title: str
    unit: str
    points: tuple[ChartPoint, ...]
    decimals: int = 1
    y_max: float | None = None  # a fixed top (100 for a percentage), else from the values

    @property
    def known(self) -> tuple[tuple[int, ChartPoint], ...]:
        """The points with a value, with their position."""
        return tuple((i, p) for i, p in enumerate(self.points) if p.value is not None)

    def sentence(self) -> str:
        """What to say beside the chart when it cannot show a trend ("" when it can)."""
        count = len(self.known)
        return NO_SESSION if count == 0 else ONE_SESSION if count == 1 else ""


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _top(chart: Chart) -> float:
    """The value at the top of the axis: the fixed one, or a round number above the largest."""
    if chart.y_max is not None:
        return chart.y_max
    largest = max((p.value or 0.0 for p in chart.points), default=0.0)
    if chart.decimals == 0 and largest <= 2:
        return 2.0  # counts: whole numbers at 0, 1 and 2 on the axis
    if largest <= 0:
        return 1.0
    step = 10 ** (len(str(int(largest))) - 1)
    return float(-(-largest // step) * step) if largest > 1 else 1.0


def _x(position: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span / 2 if count == 1 else span * position / (count - 1))


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def svg(chart: Chart) -> Markup:
    """The chart as inline SVG (empty markup when no session has a value)."""
    known = chart.known
    if not known:
        return Markup("")
    top, count = _top(chart), len(chart.points)
    title_id = f"chart-title-{escape(chart.key)}"  # keys are unique on a page
    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
              f'aria-labelledby="{title_id}" data-testid="chart-{escape(chart.key)}">'),
             f'<title id="{title_id}">{escape(chart.title)} ({escape(chart.unit)})</title>']
    parts += _axes(chart, top)
    parts += _lines(chart, top)
    for position, point in known:
        x, y = _x(position, count), _y(point.value or 0.0, top)
        parts.append(f'<circle class="chart-point" cx="{x:.1f}" cy="{y:.1f}" r="4">'
                     f'<title>{escape(point.label)}: {_fmt(point.value or 0.0, chart.decimals)} '
                     f'{escape(chart.unit)}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped


def _axes(chart: Chart, top: float) -> list[str]:
    bottom_y, right_x = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [f'<line class="chart-axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom_y}"/>',
             (f'<line class="chart-axis" x1="{LEFT}" y1="{bottom_y}" x2="{right_x}" '
              f'y2="{bottom_y}"/>')]
    for value in (0.0, top / 2, top):
        y = _y(value, top)
        parts.append(f'<line class="chart-grid" x1="{LEFT}" y1="{y:.1f}" x2="{right_x}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="chart-label chart-label-y" x="{LEFT - 6}" y="{y + 4:.1f}">'
                     f'{_fmt(value, 0 if top >= 10 else 1)}</text>')
    count = len(chart.points)
    shown = {0, count - 1} if count > 1 else {0}
    for position in sorted(shown):
        anchor = "start" if position == 0 and count > 1 else "end" if count > 1 else "middle"
        parts.append(f'<text class="chart-label chart-label-x chart-anchor-{anchor}" '
                     f'x="{_x(position, count):.1f}" y="{HEIGHT - 8}">'
                     f'{escape(chart.points[position].label)}</text>')
    return parts


def _lines(chart: Chart, top: float) -> list[str]:
    """The line through the known points; a missing value breaks it."""
    runs: list[list[str]] = [[]]
    count = len(chart.points)
    for position, point in enumerate(chart.points):
        if point.value is None:
            runs.append([])
            continue
        runs[-1].append(f"{_x(position, count):.1f},{_y(point.value, top):.1f}")
    return [f'<polyline class="chart-line" points="{" ".join(run)}"/>'
            for run in runs if len(run) > 1]


def table(chart: Chart) -> Markup:
    """The chart's figures as a table, for reading instead of looking."""
    rows = "".join(
        f"<tr><td>{escape(p.label)}</td><td>"
        f"{_fmt(p.value, chart.decimals) if p.value is not None else escape(p.note or '–')}"
        f"</td></tr>" for p in chart.points)
    return Markup(  # noqa: S704 - every text in it is escaped
        f'<table class="chart-table" data-testid="chart-table-{escape(chart.key)}">'
        f"<thead><tr><th>Session</th><th>{escape(chart.title)} ({escape(chart.unit)})"
        f"</th></tr></thead><tbody>{rows}</tbody></table>")


def figure(chart: Chart) -> Markup:
    """The chart, the sentence when there is no trend, and the table in a ``<details>``."""
    sentence = chart.sentence()
    said = (f'<p class="small muted chart-sentence" data-testid="chart-sentence-'
            f'{escape(chart.key)}">{escape(sentence)}</p>') if sentence else ""
    details = ("" if not chart.known else
               f"<details><summary>The figures as a table</summary>{table(chart)}</details>")
    return Markup(  # noqa: S704 - every text in it is escaped (the svg and table are Markup)
        f'<figure class="chart-figure" data-testid="figure-{escape(chart.key)}">'
        f"<figcaption>{escape(chart.title)}</figcaption>{svg(chart)}{said}{details}</figure>")


def chart(key: str, title: str, unit: str, labels: Sequence[str],
          values: Sequence[float | None], notes: Sequence[str] = (), **options) -> Chart:
    """A :class:`Chart` from parallel lists of labels, values and (optional) notes."""
    notes = tuple(notes) or ("",) * len(labels)
    return Chart(key, title, unit, tuple(ChartPoint(label, value, note) for label, value, note
                                         in zip(labels, values, notes, strict=True)), **options)
