"""Search across the transcripts, notes and client labels of the unlocked device."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from web_ui.views import access
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import plural
from web_ui.views.search_index import Hit, parse_query

bp = Blueprint("search", __name__)

MAX_QUERY = 200
SHOWN = 50


@bp.route("/search")
def index():
    """Sessions containing every word (or "quoted phrase") of the query."""
    svc = services()
    query = request.args.get("q", "")[:MAX_QUERY].strip()
    hits: list[Hit] = []
    total = 0
    if parse_query(query):
        hits, total = svc.index.search(query, svc.keys.identity(), access.viewer(), limit=SHOWN)
        # The query itself may be a client's name: it stays out of the audit log.
        audit("search", detail=f"{plural(total, 'session')} matched")
    return render_template("search.html", query=query, hits=hits, total=total, shown=SHOWN)
