"""Transcribe now: a waiting session transcribed at once, at idle priority, from its page.

Modelled on Redraft (:mod:`web_ui.views.drafts`): the button marks the session
(``sessions.transcribe_requested_at``) and touches ``transcribe.request`` in the
runtime directory, which starts ``holdnote-transcribe-now.service``
(``holdnote transcribe --queued``) through its path unit. The job never runs in
the web process. The marked session is the queue, so a request the device cannot
start now is not lost: the overnight job takes it. The page follows the job
through a small JSON status (polled by ``transcribe.js``, passive for idle logoff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, abort, flash, jsonify, redirect, url_for
from markupsafe import Markup

from appliance.access.roles import Access
from appliance.store.db import Session, State
from appliance.store.lifecycle import can_become
from web_ui.views import access, wake
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import STATE_LABELS

log = logging.getLogger(__name__)

bp = Blueprint("transcribe_now", __name__)

# Touched to wake holdnote-transcribe-now.path, which starts `holdnote transcribe --queued`.
REQUEST_FILE = "transcribe.request"
QUEUED = "Transcription queued: runs now at idle priority; pauses while a session is recorded."
# With a reason below it (not started, device locked, paused for a recording).
QUEUED_SHORT = "Transcription queued."
NOT_STARTED = "The device could not start it now, so it runs in tonight's overnight job."
READY = "Transcription done: reload the page to see the transcript and the draft note."
FAILED = "Transcription failed: reload the page to see why."
# Markup: a constant with an apostrophe, shown as the template always showed it.
WAITING = Markup("The recording waits for tonight's transcription. The transcript and a draft "
                 "note will be here tomorrow morning.")


@dataclass(frozen=True)
class TranscribeNow:
    """What the session page shows about transcribing a waiting session now."""

    line: str | None  # what is happening, in words (None: the page's own text applies)
    offer: bool  # show the "Transcribe now" button
    poll: bool  # something can change while the page is open: transcribe.js follows it


def waiting(session: Session) -> bool:
    """True while the session's audio waits for the job (it can become ``transcribing``)."""
    return can_become(session.state, State.TRANSCRIBING)


def status_line(session: Session) -> str | None:
    """The session's transcription state in one sentence; None once it has a transcript."""
    if session.state == State.TRANSCRIBING:
        return f"Transcribing now: {round((session.progress or 0) * 100)} % done."
    if not waiting(session):
        return None
    if session.transcribe_requested_at is not None:
        return QUEUED_SHORT if session.waiting_reason else QUEUED
    return None if session.state == State.FAILED else WAITING


def page_context(session: Session, can_edit: bool) -> dict:
    """What session.html needs: the state line, and the button for the session's clinician."""
    return {"transcribe_now": TranscribeNow(
        line=status_line(session),
        offer=can_edit and waiting(session) and session.transcribe_requested_at is None,
        poll=status_line(session) is not None)}


@bp.route("/sessions/<int:session_id>/transcribe", methods=["POST"])
def transcribe(session_id: int):
    """Queue a waiting session to be transcribed now, at idle priority."""
    svc = services()
    session, _ = access.session_for(session_id, Access.OWN)
    svc.keys.identity()  # a locked device: the login ends and the page says to log in again
    if not waiting(session):
        state = STATE_LABELS.get(session.state, session.state)
        abort(409, f"This session is \u201c{state}\u201d: only a session waiting for its "
                   "transcription (recorded, interrupted, unfinished or failed) can be "
                   "transcribed now.")
    # Last night's reason (locked, say) no longer applies; a job at work on it keeps its own.
    stale = {} if session.state == State.TRANSCRIBING else {"waiting_reason": None}
    svc.storage.update_session(session_id, transcribe_requested_at=svc.storage.now(), **stale)
    audit("transcribe.requested", session_id)
    if request_transcription(svc.cfg.paths.runtime_dir):
        flash(QUEUED_SHORT, "success")
    else:
        # The job writes its own reason when it runs; until then the page says why it waits.
        svc.storage.update_session(session_id, waiting_reason=NOT_STARTED)
        flash(f"{QUEUED_SHORT} {NOT_STARTED}", "warning")
    return redirect(url_for("sessions.show", session_id=session_id) + "#note")


@bp.route("/sessions/<int:session_id>/transcription.json")
def status_json(session_id: int):
    """The session's transcription state for transcribe.js (no client text)."""
    session, _ = access.session_for(session_id, Access.READ)
    line = status_line(session)
    if line is None:
        line = FAILED if session.state == State.FAILED else READY
    return jsonify(state=str(session.state), line=line, reason=session.waiting_reason or "",
                   done=status_line(session) is None)


def request_transcription(runtime_dir: Path) -> bool:
    """Touch the request file that starts the service now; False if it cannot be written."""
    return wake.touch_request(runtime_dir, REQUEST_FILE, "a transcription")
