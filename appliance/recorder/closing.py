"""Ending sessions when things go wrong, so two sessions are never ``recording`` at once.

The :class:`~appliance.recorder.daemon.Recorder` hands its awkward endings to a
:class:`Closer`: a recording whose writing failed (the disk filled between two
free-space checks) is ended with what reached the disk, its reason and an audit
entry; a session whose closing failed even so (the database could not be
written) is remembered and retried, and no new recording starts until every
session still marked ``recording`` has been closed.
"""

from __future__ import annotations

import logging
import sqlite3

from appliance import age
from appliance.access.audit import AuditLog
from appliance.errors import HoldnoteError
from appliance.recorder.recovery import ACTOR, RescueKeys, close_open_sessions, hms
from appliance.recorder.reserve import DISK_FULL, DiskReserve
from appliance.store.db import Session, Storage

log = logging.getLogger(__name__)

# What can go wrong with the database or the disk while a session is being closed.
CLOSE_ERRORS = (HoldnoteError, OSError, sqlite3.Error)


class Closer:
    """Ends sessions the normal stop could not, and remembers the ones still open."""

    def __init__(self, storage: Storage, rescue: RescueKeys, audit: AuditLog,
                 reserve: DiskReserve):
        self.storage = storage
        self.rescue = rescue
        self.audit = audit
        self.reserve = reserve
        self.unclosed: dict[int, str] = {}  # session id -> why it ended, for the retry
        self._last_error: str | None = None  # retries repeat it: the journal gets it once

    def write_fault(self, session: Session, reason: str) -> str:
        """The fault to show after writing failed; the journal gets it as an error."""
        log.error("session %s ended early: %s; %s of audio kept", session.id, reason,
                  hms(session.duration_s))
        advice = ("free space on the data disk to record again" if reason == DISK_FULL
                  else "check the data disk")
        return (f"{reason}: session {session.id} was ended with {hms(session.duration_s)} "
                f"kept; {advice}")

    def not_closed(self, session_id: int, reason: str | None, error: BaseException) -> str:
        """Closing failed: remember the session for :meth:`close_open`; the fault to show."""
        reason = reason or f"closing it failed ({error})"
        self.unclosed[session_id] = reason
        self.reserve.release()
        log.error("session %s could not be closed: %s; no new recording starts until it is "
                  "(retrying)", session_id, error)
        return f"session {session_id} could not be closed ({reason}); free space on the data disk"

    def audit_stop(self, session: Session, origin: str) -> None:
        """The ``recording.stop`` entry, with why it ended when that was not a person."""
        try:
            self.audit.append(ACTOR, "recording.stop", session_id=session.id, source=origin,
                              detail=session.end_reason)
        except CLOSE_ERRORS as error:  # the session is closed; the journal keeps the record
            log.error("session %s: the audit entry for its end could not be written: %s",
                      session.id, error)

    def close_open(self, recipient: age.X25519Recipient | None) -> str | None:
        """Close every session still marked ``recording``; why that failed, or ``None``."""
        try:
            closed = close_open_sessions(self.storage, recipient, self.rescue, self.audit,
                                         self.unclosed)
        except CLOSE_ERRORS as error:
            level = logging.DEBUG if str(error) == self._last_error else logging.ERROR
            self._last_error = str(error)
            log.log(level, "a session is still marked as recording and cannot be closed: %s",
                    error)
            return (f"a session is still marked as recording and cannot be closed ({error}); "
                    "free space on the data disk")
        self._last_error = None
        for result in closed:
            if result.session_id in self.unclosed:
                self.audit_stop(self.storage.get_session(result.session_id), "guard")
                log.info("session %s is closed now", result.session_id)
        self.unclosed.clear()
        return None
