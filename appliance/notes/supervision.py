"""A supervision excerpt: moments the clinician picked, with the lines around them, de-identified.

:func:`build` takes a session's transcript, the picked moments (line starts),
the clinician's comment on each and the names to replace, and gives the
:class:`Excerpt` that leaves the device (:func:`markdown`, and
:mod:`appliance.notes.supervision_pdf`). Pure: nothing is read or stored.

What it does to the text: the client's names and label become "Client" and
every other name the clinician marks "[name]" (whole words, any case,
"Dana's" too); speakers are "Clinician", "Client" and "Speaker 3" …; the
session's date is its month; dates in the lines become their month ("5
October" -> "October", "2026-10-05" -> "October 2026") and dates without a
month, or in figures, become "[date]". Weekdays, times and "last week" stay:
they date nothing without the day. The clinician's comments are their own
words and are not rewritten: a marked name still in a comment, or in a line
after the replacement (a spelling the list does not have, "José" for
"Jose"), refuses the whole export with :class:`ExcerptError` naming the name
and where.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from appliance.errors import HoldnoteError
from appliance.notes.supervision_dates import reduce_dates
from appliance.transcript import TranscriptResult

TITLE = "Supervision excerpt"
CLIENT = "Client"
CLINICIAN = "Clinician"
NAME = "[name]"
DEFAULT_CONTEXT = 3
MAX_CONTEXT = 20
NOTHING_PICKED = ("Pick at least one moment (a bookmark, a moment to review or a transcript line) "
                  "to export.")
UNKNOWN_LINE = ("A picked moment is not the start of a line of this session's transcript; "
                "reload the page and pick it again.")
# A line start matches a picked moment within half a millisecond (it travels as text).
_SAME_START = 0.0005


class ExcerptError(HoldnoteError, ValueError):
    """The excerpt cannot be made as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Pick:
    """A moment the clinician picked: the start of a transcript line, and their comment."""

    start: float
    comment: str = ""


@dataclass(frozen=True)
class Roles:
    """The speaker labels of the clinician and the client (None when not known)."""

    clinician: str | None
    client: str | None


@dataclass(frozen=True)
class Line:
    """One transcript line as it leaves: its time, speaker role and de-identified text."""

    start: float
    speaker: str
    text: str
    picked: bool


@dataclass(frozen=True)
class Moment:
    """One picked moment with the lines around it and the clinician's comment."""

    number: int
    start: float
    lines: tuple[Line, ...]
    comment: str


@dataclass(frozen=True)
class Excerpt:
    """Everything that leaves the device: the session's month and the moments."""

    month: str
    context: int
    moments: tuple[Moment, ...]


def clock(seconds: float) -> str:
    """12:05 or 1:02:05: where a line is in the recording."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def month_of(day: date) -> str:
    """"October 2026"."""
    return f"{calendar.month_name[day.month]} {day.year}"


def build(result: TranscriptResult, picks: Sequence[Pick], *, when: date, roles: Roles,
          client_names: Iterable[str] = (), other_names: Iterable[str] = (),
          context: int = DEFAULT_CONTEXT) -> Excerpt:
    """The excerpt of the picked moments, or :class:`ExcerptError` saying why not.

    ``client_names`` become "Client", ``other_names`` "[name]"; both are then
    checked for in everything that leaves, comments included.
    """
    if not picks:
        raise ExcerptError(NOTHING_PICKED)
    if not 0 <= context <= MAX_CONTEXT:
        raise ExcerptError(f"The context is {context} lines; choose 0 to {MAX_CONTEXT} lines "
                           "before and after each moment.")
    scrub = _Scrubber(_names(client_names, other_names))
    speakers = speaker_roles(result, roles)
    moments = []
    for number, (index, comment) in enumerate(_by_line(result, picks), start=1):
        low, high = max(0, index - context), min(len(result.segments), index + context + 1)
        lines = tuple(Line(seg.start, speakers[seg.speaker],
                           scrub(seg.text, f"moment {number}, the line at {clock(seg.start)}"),
                           i == index)
                      for i, seg in enumerate(result.segments[low:high], start=low))
        scrub.check(comment, f"the comment of moment {number}")
        moments.append(Moment(number, result.segments[index].start, lines, comment))
    return Excerpt(month_of(when), context, tuple(moments))


def speaker_roles(result: TranscriptResult, roles: Roles) -> dict[str, str]:
    """Each speaker label to what the excerpt calls it: Clinician, Client, Speaker 3 …"""
    named = {label: role for label, role in ((roles.clinician, CLINICIAN), (roles.client, CLIENT))
             if label is not None}
    shown, number = {}, len(set(named.values())) + 1
    for label in result.speakers:
        if label in named:
            shown[label] = named[label]
        else:
            shown[label] = f"Speaker {number}"
            number += 1
    return shown


def _by_line(result: TranscriptResult, picks: Sequence[Pick]) -> list[tuple[int, str]]:
    """(line index, comment) of each picked line in transcript order; a line picked twice
    (a bookmark and the line itself) is one moment with both comments."""
    comments: dict[int, list[str]] = {}
    for pick in picks:
        said = comments.setdefault(_line_at(result, pick.start), [])
        comment = visible(pick.comment).strip()
        if comment and comment not in said:
            said.append(comment)
    return [(index, "\n\n".join(comments[index])) for index in sorted(comments)]


def _line_at(result: TranscriptResult, start: float) -> int:
    for index, segment in enumerate(result.segments):
        if abs(segment.start - start) < _SAME_START:
            return index
    if not math.isfinite(start):
        raise ExcerptError(UNKNOWN_LINE)
    raise ExcerptError(f"There is no transcript line starting at {clock(start)} in this session; "
                       "reload the page and pick the moment again.")


def _names(client_names: Iterable[str], other_names: Iterable[str]) -> dict[str, Name]:
    """Each name to replace by its folded form; the client's win a tie."""
    names: dict[str, Name] = {}
    for replacement, given in ((NAME, other_names), (CLIENT, client_names)):
        for name in given:
            tidy = " ".join(unicodedata.normalize("NFC", name).split())
            if tidy:
                names[tidy.casefold()] = Name(tidy, replacement)
    return names


@dataclass(frozen=True)
class Name:
    """A name as the clinician typed it, and what replaces it."""

    typed: str
    replacement: str


# Replacements are first put in as private-use marks, so the check after them does not
# mistake "Client" put in for a name (a label "Client A") for one left in.
_MARK = re.compile("\ue000(\\d+)\ue001")


class _Scrubber:
    """Replaces the names, then the dates, in a line; refuses a marked name still left."""

    def __init__(self, names: Mapping[str, Name]):
        self.names = names
        self.replacements = sorted({n.replacement for n in names.values()})
        # A name that is what replaces it ("client") is not looked for in what is left.
        self.folded = {key: _fold(key).strip() for key in names
                       if _fold(key) not in _fold(" ".join(self.replacements))}
        longest_first = sorted((n.typed for n in names.values()), key=len, reverse=True)
        alternatives = "|".join(re.escape(name).replace(r"\ ", r"\s+") for name in longest_first)
        # Not inside a word on either side: "Dana's" and "Dana-Marie" match, "Danae" does not.
        self.pattern = (re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
                        if names else None)

    def __call__(self, text: str, where: str) -> str:
        text = visible(text)
        if self.pattern is not None:
            text = self.pattern.sub(self._mark, text)
        text = reduce_dates(text)
        self.check(text, where)
        return _MARK.sub(lambda m: self.replacements[int(m.group(1))], text)

    def _mark(self, match: re.Match) -> str:
        name = self.names[" ".join(match.group(0).split()).casefold()]
        return f"\ue000{self.replacements.index(name.replacement)}\ue001"

    def check(self, text: str, where: str) -> None:
        """:class:`ExcerptError` when a marked name is in ``text`` (any accent, case or
        invisible character), naming it and ``where``."""
        seen = _fold(text)
        for key, folded in self.folded.items():
            if folded and f" {folded} " in seen:
                typed = self.names[key].typed
                todo = ("Take it out of the comment" if "comment" in where else
                        "Add this spelling to the names to replace")
                raise ExcerptError(
                    f"'{_original(typed, text)}' is still in {where}, so nothing was exported. "
                    f"{todo} (you marked '{typed}').")


def visible(text: str) -> str:
    """``text`` composed (NFC) and without invisible characters (a soft hyphen inside a name)."""
    return "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) != "Cf")


def _fold(text: str) -> str:
    """For the final check: no accents, no invisible characters, one case, words split by spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed
                   if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    return " " + " ".join(re.sub(r"[^\w]+", " ", kept.casefold()).split()) + " "


def _original(name: str, text: str) -> str:
    """The spelling of ``name`` as ``text`` has it (its folded words), for the message."""
    key = _fold(name).split()
    words = re.findall(r"\w+(?:[\u00ad\u200b-\u200d]\w+)*", unicodedata.normalize("NFC", text))
    for i in range(len(words) - len(key) + 1):
        if [_fold(w).strip() for w in words[i:i + len(key)]] == key:
            return " ".join(words[i:i + len(key)])
    return name


def markdown(excerpt: Excerpt) -> str:
    """The excerpt as Markdown: exactly what the preview shows and the .md download holds."""
    out = [f"# {TITLE}", "", *(f"{name}: {value}  " for name, value in facts(excerpt)), ""]
    for moment in excerpt.moments:
        out += [f"## Moment {moment.number}, at {clock(moment.start)}", ""]
        out += [line_text(line) for line in moment.lines]
        out += ["", "**Comment:**", ""]
        out += [f"> {row}" if row else ">" for row in moment.comment.splitlines()] or ["> (none)"]
        out.append("")
    return "\n".join(out)


def facts(excerpt: Excerpt) -> tuple[tuple[str, str], ...]:
    """The head of the excerpt: the session's month and what the moments hold."""
    around = f"{_lines(excerpt.context)} before and after each"
    return (("Session", excerpt.month), ("Moments", f"{len(excerpt.moments)}, with {around}"))


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"


def line_text(line: Line) -> str:
    """"- 12:05 **Client:** text", marked "▸" when it is the picked line."""
    mark = "▸ " if line.picked else ""
    return f"- {mark}{clock(line.start)} **{line.speaker}:** {' '.join(line.text.split())}"
