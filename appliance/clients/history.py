"""A client's notes over time: the signed note before a session, for the next draft's context.

Only a signed note counts: a draft may still change, and what was planned is
what the clinician signed. Only the note's body is read, never its addenda.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from appliance import age
from appliance.errors import CryptoError
from appliance.store.db import Session, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedNote:
    """A client's signed note: its session, when that began, when it was signed, its body."""

    session_id: int
    started_at: datetime
    signed_at: datetime
    note: Mapping = field(repr=False)  # the decrypted note (client text: never logged)


def previous_signed_note(storage: Storage, session: Session, identity) -> SignedNote | None:
    """The newest signed note of the same client from a session that began before ``session``.

    None for a session assigned to no client, or when the client has no earlier
    signed note. A note that cannot be decrypted is skipped (and logged by id):
    the next older one is used rather than none.
    """
    if session.client_id is None:
        return None
    earlier = [s for s in storage.client_sessions(session.client_id)
               if s.id != session.id and s.started_at < session.started_at]
    for candidate in sorted(earlier, key=lambda s: (s.started_at, s.id), reverse=True):
        row = storage.load_note(candidate.id)
        if row is None or not row["signed_at"]:
            continue
        try:
            note = json.loads(age.decrypt(row["note_enc"], [identity]))
        except (CryptoError, ValueError):
            log.warning("session %s: its signed note cannot be read; an older one is used",
                        candidate.id)
            continue
        if isinstance(note, dict):
            return SignedNote(candidate.id, candidate.started_at,
                              datetime.fromisoformat(row["signed_at"]), note)
    return None
