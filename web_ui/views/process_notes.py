"""Process notes: the clinician's private note on a session, shown to its author only.

Whoever may read a session (its clinician, a colleague it is shared with)
keeps a note of their own on its page; each sees only theirs, and a page never
says whether anyone else wrote one. The note is encrypted like everything
else (:mod:`appliance.store.process_notes` holds the ciphertext), and nothing
that leaves the device reads it: exports, the client record, search and the
drafting model only read the session's own records. The audit log gets
``process_note.save``, ``.view`` and ``.delete`` with the session id, never
the text. Signing the progress note does not lock it: it is not part of the
record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, flash, redirect, request, url_for

from appliance import age
from appliance.access.roles import Access
from appliance.errors import CryptoError
from appliance.store import process_notes as table
from appliance.store.db import Session
from web_ui.views import access, records
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import when

log = logging.getLogger(__name__)

bp = Blueprint("process_notes", __name__)

MAX_CHARS = 20_000
# The key of the text a refused form sends back to the session page (no note section has a hyphen).
TYPED = "process-note"
EMPTY = ("The process note is empty, so nothing was saved. Write something, or use "
         "\u201cDelete process note\u201d to remove it.")
TOO_LONG = ("A process note holds at most {limit:,} characters; this one has {length:,}. "
            "Shorten it and save again: your text is below, nothing was saved.")


@dataclass(frozen=True)
class Panel:
    """The session page's "Process note (private)" panel, for the person looking at it."""

    text: str
    version: str  # what a save sends back (see appliance.store.process_notes)
    saved_at: datetime | None
    damaged: bool = False
    max_chars: int = MAX_CHARS

    @property
    def exists(self) -> bool:
        """Whether the viewer has written a process note on this session."""
        return self.saved_at is not None


def page_context(session: Session, level: Access) -> dict:
    """The viewer's own process note on ``session``, for session.html (never anyone else's)."""
    if level < Access.READ:
        return {"process_note": None}
    svc = services()
    row = table.load(svc.storage, session.id, access.viewer().user_id)
    if row is None:
        return {"process_note": Panel("", table.NONE, None)}
    saved = datetime.fromisoformat(row.updated_at)
    try:
        text = age.decrypt(row.body_enc, [svc.keys.identity()]).decode("utf-8")
    except (CryptoError, ValueError) as error:
        # Not through the damage log: the Device page would tell everyone the note exists.
        log.warning("session %s: a process note does not decrypt (%s)", session.id,
                    type(error).__name__)
        return {"process_note": Panel("", row.version, saved, damaged=True)}
    return {"process_note": Panel(text, row.version, saved)}


def audit_view(context: dict) -> None:
    """Log that the session page showed the viewer their own process note (if they have one)."""
    panel = context.get("process_note")
    if panel is not None and panel.exists:
        audit("process_note.view", context["s"].id)


def _again(session_id: int, message: str, status: int, text: str | None = None):
    """The session page again with ``message``, the typed ``text`` (if any) kept in the panel."""
    from web_ui.views import sessions  # the session page imports this module

    typed = {} if text is None else {TYPED: text}
    return sessions._rerender(session_id, message, status, typed)


def _problem(text: str) -> str | None:
    if not text.strip():
        return EMPTY
    if len(text) > MAX_CHARS:
        return TOO_LONG.format(limit=MAX_CHARS, length=len(text))
    return None


def _changed_meanwhile(error: table.ProcessNoteConflictError) -> str:
    if error.saved_at is None:
        return ("Not saved: your process note was deleted in another window since this page "
                "was opened. Your text is below; save it again to keep it.")
    return (f"Not saved: your process note was saved again at {when(error.saved_at, '%H:%M')} "
            "in another window since this page was opened. Your text is below; saving it now "
            "replaces that version (open the session in a new tab to read it first).")


@bp.route("/sessions/<int:session_id>/process-note", methods=["POST"])
def save(session_id: int):
    """Save the viewer's own process note (new, or over the version the page showed)."""
    svc = services()
    access.session_for(session_id, Access.READ)
    svc.keys.identity()  # a locked device: the login ends and the page says to log in again
    text = request.form.get("text", "").replace("\r\n", "\n")
    problem = _problem(text)
    if problem:
        return _again(session_id, problem, 400, text)
    body = records.encrypt_text(text, svc.keys.recipient())
    try:
        table.save(svc.storage, session_id, access.viewer().user_id, body,
                   based_on=request.form.get("version", table.NONE))
    except table.ProcessNoteConflictError as error:
        return _again(session_id, _changed_meanwhile(error), 409, text)
    audit("process_note.save", session_id)
    flash("Process note saved. Only you can read it.", "success")
    return redirect(url_for("sessions.show", session_id=session_id) + "#process-note")


@bp.route("/sessions/<int:session_id>/process-note/delete", methods=["POST"])
def delete(session_id: int):
    """Delete the viewer's own process note (only the version the page showed)."""
    svc = services()
    access.session_for(session_id, Access.READ)
    svc.keys.identity()
    try:
        deleted = table.delete(svc.storage, session_id, access.viewer().user_id,
                               based_on=request.form.get("version", table.NONE))
    except table.ProcessNoteConflictError as error:
        return _again(session_id, f"Not deleted: your process note was saved again at "
                      f"{when(error.saved_at, '%H:%M')} in another window since this page was "
                      "opened. It is shown below as saved now; delete it again if you mean to.", 409)
    if deleted:
        audit("process_note.delete", session_id)
        flash("Process note deleted.", "success")
    else:
        flash("There was no process note to delete.", "info")
    return redirect(url_for("sessions.show", session_id=session_id) + "#process-note")
