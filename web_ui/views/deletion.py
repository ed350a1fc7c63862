"""Deleting a session: what will be lost, who may, and the audit entry.

A signed note and its addenda are a clinical record that record-keeping rules
keep for years, so the page says plainly what goes (the signed note, how many
addenda, whether the note was ever exported: the audit log knows) and only an
admin may delete a signed one.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from appliance.access.roles import Access, deletion_refusal
from appliance.store.db import State
from web_ui.views.access import session_for, viewer
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import local_date

EXPORTED = "session.export"


def _page(session, level: Access, error: str | None = None, status: int = 200):
    svc = services()
    facts = svc.storage.record_facts(session.id)
    exported = svc.audit.last_of(session.id, EXPORTED)
    return render_template(
        "delete.html", s=session, session_date=local_date(session.started_at), facts=facts,
        exported=exported, refusal=deletion_refusal(viewer(), level, facts),
        can_read=level >= Access.READ, error=error), status


def delete(session_id: int):
    """GET: what deleting would destroy. POST: delete once the date is typed and it is allowed."""
    session, level = session_for(session_id, Access.LISTED)
    if level == Access.LISTED and not viewer().admin:
        abort(404, "There is no such session. It may have been deleted.")
    if request.method == "GET":
        return _page(session, level)
    facts = services().storage.record_facts(session_id)
    refusal = deletion_refusal(viewer(), level, facts)
    if refusal:
        return _page(session, level, refusal, 403)
    if session.state == State.RECORDING:
        return _page(session, level, "This session is still recording. "
                     "Stop the recording first.", 409)
    expected = local_date(session.started_at)
    if request.form.get("confirm_date", "").strip() != expected:
        return _page(session, level, f"Type the session date {expected} exactly to confirm. "
                     "Nothing was deleted.", 400)
    services().storage.delete_session(session_id)
    audit("session.delete", session_id, detail=_lost(facts))
    flash(f"The session of {expected} was deleted: audio, transcript and note are gone.",
          "success")
    return redirect(url_for("sessions.index"))


def _lost(facts) -> str:
    """The audit entry's detail: what kind of record went (never any client text)."""
    if facts.signed:
        return f"signed note by {facts.signed_by}, {facts.addenda} addenda"
    return "draft note" if facts.has_note else "no note"
