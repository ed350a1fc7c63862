"""Retention: when a session's audio (and the session itself) goes, and the sweep that does it.

``retention.audio`` chooses when audio is deleted: ``delete_after_signing``
(the default: once its note is signed, and at most ``audio_keep_days`` after
transcription for a note left unsigned), ``delete_after_transcription`` (as
soon as the transcript is stored) or ``keep_days``. The overnight job runs
:func:`sweep` every night; the web page applies ``delete_after_signing`` as
the note is signed (:func:`on_signing`), the sweep being the backstop. Audio
with unreadable parts is never deleted here: what is left of it may be all
there is. Every deletion is audit-logged with why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.access.audit import AuditLog
from appliance.store.db import PENDING_STATES, Session, State, Storage

log = logging.getLogger(__name__)

UNREADABLE_KEPT = "part of the recording could not be read: the audio is kept for inspection"
SIGNED_WHY = "deleted after signing"
AFTER_SIGNING = "delete_after_signing"


@dataclass(frozen=True)
class AuditNote:
    """An audit entry a retention decision calls for (action and detail, no client text)."""

    action: str
    detail: str


def audio_deadline(retention, session: Session) -> datetime | None:
    """The latest moment retention keeps this session's audio; None when no date applies.

    Days count from transcription, so audio that still waits for its transcript
    is never deleted by date.
    """
    if retention.audio == "delete_after_transcription" or session.transcribed_at is None:
        return None
    return session.transcribed_at + timedelta(days=retention.audio_keep_days)


def audio_due(retention, session: Session, now: datetime) -> str | None:
    """Why retention deletes this session's audio now (the audit detail), or None to keep it.

    Damaged audio is weighed by the caller (:func:`keeps_damaged_audio`).
    """
    if session.audio_deleted_at is not None or session.state not in (State.DRAFT, State.SIGNED):
        return None
    if retention.audio == AFTER_SIGNING and session.state == State.SIGNED:
        return SIGNED_WHY
    deadline = audio_deadline(retention, session)
    if deadline is None or deadline > now:
        return None
    if retention.audio == AFTER_SIGNING:
        return f"kept {retention.audio_keep_days} days, the limit for an unsigned note"
    return f"kept {retention.audio_keep_days} days"


def keeps_damaged_audio(session: Session) -> bool:
    """True (and says why in the journal) for audio retention must not delete.

    A recording with unreadable parts stays until a person has looked at it
    and deletes it by hand: what is left of it may be all there is.
    """
    if not session.unreadable_s or session.audio_deleted_at is not None:
        return False
    log.warning("session %s: audio kept although retention would delete it: %.1f s of it "
                "could not be read (delete it by hand once checked)",
                session.id, session.unreadable_s)
    return True


def on_signing(retention, storage: Storage, session_id: int) -> AuditNote | None:
    """Apply ``delete_after_signing`` to a note just signed: the audit entry it calls for.

    None when the policy is another one or the audio is gone already.
    """
    if retention.audio != AFTER_SIGNING:
        return None
    session = storage.get_session(session_id)
    if session.audio_deleted_at is not None:
        return None
    if keeps_damaged_audio(session):
        return AuditNote("retention.audio_kept", UNREADABLE_KEPT)
    storage.delete_audio(session_id)
    log.info("session %s: audio %s", session_id, SIGNED_WHY)
    return AuditNote("retention.audio_deleted", SIGNED_WHY)


class Sweep:
    """The nightly retention pass, done by ``actor`` (the overnight job's name in the audit log)."""

    def __init__(self, cfg, storage: Storage, audit: AuditLog, actor: str):
        self.retention = cfg.retention
        self.storage = storage
        self.audit = audit
        self.actor = actor

    def run(self, now: datetime) -> None:
        """Delete audio and sessions that the retention policy no longer keeps."""
        if self.retention.audio != "delete_after_transcription":
            for session in self.storage.list_sessions(states=(State.DRAFT, State.SIGNED)):
                why = audio_due(self.retention, session, now)
                if why and not keeps_damaged_audio(session):
                    self.delete_audio(session.id, why)
        if self.retention.session_keep_days > 0:
            cutoff = now - timedelta(days=self.retention.session_keep_days)
            for session in self.storage.list_sessions(until=cutoff):
                if session.state in (State.RECORDING, *PENDING_STATES):
                    continue  # never delete audio that has not been transcribed yet
                if keeps_damaged_audio(session):
                    continue
                self.expire(session, f"older than {self.retention.session_keep_days} days")

    def expire(self, session: Session, why: str) -> None:
        """A session past ``session_keep_days``: all of it, or all but its signed record.

        A signed note and its addenda are a clinical record that record-keeping
        rules keep for years; they go only with ``retention.delete_signed_notes``.
        Otherwise the audio and transcript go and the note stays.
        """
        facts = self.storage.record_facts(session.id)
        signed = facts.signed or session.state == State.SIGNED
        if signed and not self.retention.delete_signed_notes:
            if session.audio_deleted_at is None:
                self.delete_audio(session.id, why)
            if self.storage.delete_transcript(session.id):
                self.audit.append(self.actor, "retention.transcript_deleted",
                                  session_id=session.id, detail=f"{why}; the signed note is kept")
            return
        self.storage.delete_session(session.id)
        self.audit.append(self.actor, "retention.session_deleted", session_id=session.id,
                          detail=why + ("; signed note included (delete_signed_notes)"
                                        if signed else ""))
        log.info("session %s deleted (retention)", session.id)

    def delete_audio(self, sid: int, why: str) -> None:
        """Delete one session's audio file and say so in the audit log and the journal."""
        self.storage.delete_audio(sid)
        self.audit.append(self.actor, "retention.audio_deleted", session_id=sid, detail=why)
        log.info("session %s: audio %s", sid, why)
