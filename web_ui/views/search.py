"""Search across the transcripts, notes, client labels and client names of the unlocked device.

Results are the clinician's own and shared sessions; the client filter offers
only the clinician's own clients.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from web_ui.views import access
from web_ui.views.auth import audit
from web_ui.views.client_access import NO_SUCH_CLIENT, my_clients
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
    clients = my_clients()
    chosen = request.args.get("client", "").strip()
    if chosen and chosen not in {str(c.id) for c in clients}:
        abort(404, NO_SUCH_CLIENT + " Choose one of your clients in the filter.")
    only = {s.id for s in svc.storage.client_sessions(int(chosen))} if chosen else None
    if parse_query(query):
        hits, total = svc.index.search(query, svc.keys.identity(), access.viewer(), limit=SHOWN,
                                       only=only)
        # The query itself may be a client's name: it stays out of the audit log.
        audit("search", detail=f"{plural(total, 'session')} matched"
              + (f", client {chosen}" if chosen else ""))
    return render_template("search.html", query=query, hits=hits, total=total, shown=SHOWN,
                           clients=clients, chosen=chosen)
