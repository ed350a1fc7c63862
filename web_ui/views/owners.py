"""Claiming, handing over and sharing sessions; every change is audit-logged by name."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for

from appliance.access.roles import Access, may_reassign
from web_ui.views.access import ADMIN_ONLY, colleague, names, session_for, viewer
from web_ui.views.auth import audit
from web_ui.views.context import services

bp = Blueprint("owners", __name__)


def _colleague() -> tuple[int, str]:
    """The account named in the form, or 400 with a sentence."""
    return colleague(request.form.get("user", "").strip())


def _back(session_id: int):
    return redirect(url_for("sessions.show", session_id=session_id) + "#owner")


@bp.route("/sessions/<int:session_id>/claim", methods=["POST"])
def claim(session_id: int):
    """Take an unassigned session as your own."""
    session, _ = session_for(session_id, Access.LISTED)
    if session.owner_id is not None or not services().storage.claim(session_id,
                                                                     viewer().user_id):
        flash("This session already belongs to a clinician.", "error")
        return redirect(url_for("sessions.index"))
    audit("session.claim", session_id)
    flash("The session is yours now.", "success")
    return redirect(url_for("sessions.show", session_id=session_id))


@bp.route("/sessions/<int:session_id>/assign", methods=["POST"])
def assign(session_id: int):
    """Hand a session to a colleague (its owner), or reassign it (an admin)."""
    session, level = session_for(session_id, Access.LISTED)
    if not may_reassign(viewer(), level):
        abort(403, ADMIN_ONLY)  # level is READ here: LISTED without admin is not reassignable
    user_id, username = _colleague()
    before = names().get(session.owner_id) if session.owner_id else "unassigned"
    services().storage.assign(session_id, user_id)
    audit("session.reassign", session_id, detail=f"{before} -> {username}")
    flash(f"The session now belongs to {username}.", "success")
    if user_id == viewer().user_id:
        return redirect(url_for("sessions.show", session_id=session_id))
    return redirect(url_for("sessions.index"))


@bp.route("/sessions/<int:session_id>/share", methods=["POST"])
def share(session_id: int):
    """Let a colleague (a supervisor) read this session; they cannot change it."""
    session, _ = session_for(session_id, Access.OWN)
    user_id, username = _colleague()
    if user_id == session.owner_id:
        flash("That is the session's own clinician.", "error")
    elif services().storage.share(session_id, user_id, viewer().username):
        audit("session.share", session_id, detail=username)
        flash(f"{username} can now read this session (read-only).", "success")
    else:
        flash(f"This session was already shared with {username}.", "info")
    return _back(session_id)


@bp.route("/sessions/<int:session_id>/unshare", methods=["POST"])
def unshare(session_id: int):
    """End a colleague's read-only access."""
    session_for(session_id, Access.OWN)
    user_id, username = _colleague()
    if services().storage.unshare(session_id, user_id):
        audit("session.unshare", session_id, detail=username)
        flash(f"{username} can no longer read this session.", "success")
    return _back(session_id)
