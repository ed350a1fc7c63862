"""The audit log page: the chain check, pages, filters (user, action, dates) and CSV export.

The routes live in :mod:`web_ui.views.admin`; this module reads the query
string and renders. Filters are plain GET parameters, so a filtered page can be
bookmarked, paged and exported with the same address.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from flask import Response, render_template, request

from appliance.access.audit import Entry, Filter
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import day_bounds, parse_day

PER_PAGE = 50
# A spreadsheet runs a cell that starts with one of these as a formula; user
# names typed at the login page end up in the log, so neutralise them.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ["seq", "time_utc", "user", "action", "session", "from", "detail",
               "prev_hash", "hash"]


@dataclass(frozen=True)
class Query:
    """The page's filters as typed, and the :class:`Filter` they mean."""

    user: str
    action: str
    first: str
    last: str

    @classmethod
    def from_request(cls) -> Query:
        """The filters in the query string (missing ones empty)."""
        args = request.args
        return cls(*(args.get(k, "").strip()[:100] for k in ("user", "action", "from", "to")))

    def filter(self) -> Filter:
        """What to select; a malformed date is ignored (the form shows it empty)."""
        since, until = day_bounds(parse_day(self.first), parse_day(self.last))
        return Filter(self.user or None, self.action or None, since, until)

    def params(self) -> dict[str, str]:
        """The non-empty filters, for links to other pages and the export."""
        named = {"user": self.user, "action": self.action, "from": self.first, "to": self.last}
        return {k: v for k, v in named.items() if v}


def requested_page(pages: int) -> tuple[int, str | None]:
    """The page asked for, within 1..pages, and a note if it had to be changed."""
    text = request.args.get("page", "1").strip()
    if not (text.isascii() and text.isdigit()):
        return 1, (f"“{text[:20]}” is not a page number; showing the first page."
                   if text else None)
    # Checked before any arithmetic: a 21-digit page must not reach SQLite (OverflowError).
    if len(text) > 9 or int(text) > pages:
        shown = text if len(text) <= 24 else text[:24] + "…"
        return pages, f"There is no page {shown}; showing the last page ({pages})."
    return max(1, int(text)), None


def page():
    """Render one page of the filtered log, newest first."""
    svc = services()
    query = Query.from_request()
    where = query.filter()
    total = svc.audit.count(where)
    pages = max(1, -(-total // PER_PAGE))
    number, note = requested_page(pages)
    entries = svc.audit.search(where, offset=(number - 1) * PER_PAGE, limit=PER_PAGE)
    actors, actions = svc.audit.choices()
    return render_template(
        "audit.html", verdict=svc.audit.verify(), entries=entries, page=number, pages=pages,
        total=total, note=note, query=query, params=query.params(), actors=actors,
        actions=actions)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _row(entry: Entry) -> list[str]:
    return [_cell(v) for v in (entry.seq, entry.ts, entry.actor, entry.action,
                               entry.session_id, entry.source, entry.detail,
                               entry.prev_hash, entry.hash)]


def export() -> Response:
    """Every entry the filters select, as CSV (the export itself is audited)."""
    svc = services()
    query = Query.from_request()
    entries = svc.audit.search(query.filter())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_row(e) for e in entries)
    described = ", ".join(f"{k}={v}" for k, v in query.params().items()) or "all entries"
    audit("audit.export", detail=f"{len(entries)} entries ({described})")
    stamp = svc.now().strftime("%Y%m%d-%H%M")
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="holdnote-audit-{stamp}.csv"'})
