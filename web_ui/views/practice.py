"""My practice: your interventions over time, across all your own sessions.

``practice.page`` (GET /review) on its own blueprint. Every logged-in clinician
sees their own sessions only (the sessions they own; shared ones and
colleagues' are left out), month by month (session by session within the
first month). The figures are computed from the decrypted transcripts and
kept in this worker's plaintext cache under the transcripts' version tags,
as the client page does, so the page is recomputed only when a session is
added, corrected or transcribed. Audited as ``practice.view`` with no id and
no text.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import groupby

from flask import Blueprint, render_template

from appliance.clients.consent import day
from appliance.store.db import Session
from web_ui.views import access, interventions
from web_ui.views.auth import audit
from web_ui.views.client_page import session_texts
from web_ui.views.context import services

bp = Blueprint("practice", __name__)


def own_sessions() -> list[Session]:
    """The logged-in clinician's own sessions, oldest first."""
    me = access.viewer()
    return [s for s in services().storage.list_sessions(oldest_first=True)
            if s.owner_id == me.user_id]


def _cache_key(sessions: list[Session], user_id: int) -> bytes:
    """Whose sessions, and each transcript's version tag (a correction changes it)."""
    tags = {row["id"]: row["transcript_v"] for row in services().storage.search_fingerprints()}
    name, enrolled = interventions.names()
    return json.dumps([user_id, name, enrolled,
                       [[s.id, s.started_at.isoformat(), tags.get(s.id)] for s in sessions]]
                      ).encode()


def groups(found) -> list[interventions.Group]:
    """The sessions' figures month by month once they span two months; session by session before.

    One month as one point would draw no trend and say "one session"; its sessions do.
    """
    by_month = [interventions.Group(month, tuple(f for _, f in items))
                for month, items in groupby(found, key=lambda pair: f"{pair[0].when:%b %Y}")]
    if len(by_month) > 1:
        return by_month
    return [interventions.Group(day(text.when), (f,)) for text, f in found]


@bp.route("/review")
def page():
    """The practice page."""
    svc = services()
    identity = svc.keys.identity()  # a locked device: the login page, which unlocks it
    sessions = own_sessions()
    key = _cache_key(sessions, access.viewer().user_id)
    found = interventions.cached("practice", key, lambda: session_texts(sessions, identity)[0])
    months = groups(found)
    left_out = Counter(f.reason for _, f in found if isinstance(f, interventions.Unavailable))
    audit("practice.view")
    return render_template(
        "practice.html", charts=interventions.trend_charts(months, decimals=1),
        counted=sum(len(g.counted) for g in months), transcribed=len(found),
        sessions=len(sessions), left_out=left_out.most_common())
