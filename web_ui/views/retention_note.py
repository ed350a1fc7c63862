"""When a session's audio goes, in words for the session page, and the deletion at signing.

The rules are :mod:`appliance.transcription.retention`'s; this module only says
them. With ``retention.audio = "delete_after_signing"`` (the default) the web
process deletes the audio as the note is signed: it runs with the same write
access to the data directory as the recorder and the job (``ReadWritePaths`` in
``holdnote-web.service``; deleting a session from the page unlinks its audio
too). Should that fail, the overnight sweep deletes it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import flash

from appliance.errors import StorageError
from appliance.store.db import Session, State, utcnow
from appliance.transcription import retention
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import local

log = logging.getLogger(__name__)

DAMAGED = "Kept: part of it is damaged. It is never deleted automatically; delete it by hand once checked."
TONIGHT = "The audio is deleted tonight"


def day(moment: datetime) -> str:
    """A date as the page says it: 9 Dec 2026 (local time)."""
    shown = local(moment) or moment
    return f"{shown.day} {shown:%b %Y}"


def audio_deletion_note(cfg, session: Session, now: datetime | None = None) -> str:
    """When this session's audio will be (or was) deleted, in one sentence; "" when it has none."""
    if session.audio_deleted_at is not None:
        return f"The audio was deleted on {day(session.audio_deleted_at)} (retention)."
    if session.audio_path is None:
        return ""
    if session.unreadable_s:
        return DAMAGED
    if session.state in (State.DRAFT, State.SIGNED):
        return _after_transcription(cfg.retention, session, now or utcnow())
    return _before_transcription(cfg.retention, session)


def _before_transcription(policy, session: Session) -> str:
    failed = "Kept: the transcription failed. " if session.state == State.FAILED else ""
    if policy.audio == "delete_after_transcription":
        return failed + "The audio is deleted once it is transcribed."
    if policy.audio == "keep_days":
        return failed + f"The audio is kept {policy.audio_keep_days} days after transcription."
    return (failed + "The audio is kept until the note is signed (at most "
            f"{policy.audio_keep_days} days after transcription).")


def _after_transcription(policy, session: Session, now: datetime) -> str:
    if policy.audio == "delete_after_transcription":
        return "Kept: it was transcribed under an earlier retention setting."
    due = retention.audio_due(policy, session, now)
    if due:
        reason = "the note is signed" if due == retention.SIGNED_WHY else (
            f"kept {policy.audio_keep_days} days")
        return f"{TONIGHT} ({reason})."
    deadline = retention.audio_deadline(policy, session)
    if policy.audio == "keep_days":
        return f"The audio is kept until {day(deadline)}." if deadline else ""
    limit = f" (at most until {day(deadline)})" if deadline else ""
    return f"The audio is kept until the note is signed{limit}."


def after_signing(session_id: int) -> None:
    """Apply ``delete_after_signing`` to a note just signed: delete the audio, audit, say so.

    A deletion that fails does not undo the signature: the overnight sweep retries it.
    """
    svc = services()
    try:
        done = retention.on_signing(svc.cfg.retention, svc.storage, session_id)
    except (OSError, StorageError) as error:
        log.warning("session %s: the audio could not be deleted on signing (%s); the "
                    "overnight job deletes it", session_id, error)
        flash(f"{TONIGHT}: it could not be deleted now.", "warning")
        return
    if done is None:
        return
    audit(done.action, session_id, detail=done.detail)
    flash("The audio of this session was deleted now that the note is signed."
          if done.action == "retention.audio_deleted" else f"The audio is {DAMAGED[0].lower()}"
          f"{DAMAGED[1:]}", "info")
