"""Encrypted state kept beside the sessions: transcription checkpoints, voice profiles
(whose table :mod:`appliance.store.voices` keeps).

Both are age ciphertexts to the practice recipient, like everything else
client-related; writing them needs only the public key, reading them the
unlocked identity.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from appliance import age
from appliance.errors import CryptoError
from appliance.store import voices as stored_voices
from appliance.store.db import Storage, iso
from appliance.store.voices import DEFAULT_VOICE
from appliance.transcription.pipeline import Progress
from appliance.transcription.speakers import CLINICIAN

log = logging.getLogger(__name__)



class Checkpoints:
    """Encrypted partial results in the ``checkpoints`` table, one per session."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def save(self, session_id: int, progress: Progress, recipient) -> None:
        """Replace the session's checkpoint with ``progress`` (encrypted)."""
        blob = age.encrypt(json.dumps(progress.to_json()).encode(), [recipient])
        with self.storage.connect() as conn:
            conn.execute(
                "INSERT INTO checkpoints(session_id, offset_s, partial_enc, updated_at) "
                "VALUES(?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET "
                "offset_s = excluded.offset_s, partial_enc = excluded.partial_enc, "
                "updated_at = excluded.updated_at",
                (session_id, progress.seconds, blob, iso(self.storage.now())))

    def load(self, session_id: int, identity) -> Progress | None:
        """The saved state, or None (no checkpoint, or one that cannot be read)."""
        with self.storage.connect() as conn:
            row = conn.execute("SELECT partial_enc FROM checkpoints WHERE session_id = ?",
                               (session_id,)).fetchone()
        if row is None:
            return None
        try:
            return Progress.from_json(json.loads(age.decrypt(row["partial_enc"], [identity])))
        except (CryptoError, ValueError, TypeError, KeyError) as error:
            log.warning("session %s: checkpoint unreadable (%s); starting over", session_id, error)
            return None

    def offset(self, session_id: int) -> float | None:
        """Seconds done according to the checkpoint (no key needed)."""
        with self.storage.connect() as conn:
            row = conn.execute("SELECT offset_s FROM checkpoints WHERE session_id = ?",
                               (session_id,)).fetchone()
        return row["offset_s"] if row else None

    def drop(self, session_id: int) -> None:
        """Forget the session's checkpoint."""
        with self.storage.connect() as conn:
            conn.execute("DELETE FROM checkpoints WHERE session_id = ?", (session_id,))


# Version 2: CAM++ embeddings. Version 1 held MFCC statistics, which the
# current labelling cannot compare; such a profile is skipped until enrolled again.
_VOICE_VERSION = 2


def save_voice(storage: Storage, recipient, profile: np.ndarray, name: str = DEFAULT_VOICE) -> None:
    """Store (or replace) a voice profile, encrypted to ``recipient``."""
    payload = json.dumps({"version": _VOICE_VERSION, "embedding": [float(v) for v in profile]})
    stored_voices.put(storage, name, age.encrypt(payload.encode(), [recipient]))


def load_voices(storage: Storage, identity) -> dict[str, np.ndarray]:
    """Every readable voice profile, by the label its speaker gets.

    The profile named "clinician" labels its speaker ``speakers.CLINICIAN`` (shown
    as the configured clinician name); any other profile its own name. A profile
    that cannot be read, or was made by the older method, is left out with a
    warning in the journal.
    """
    voices = {}
    for name, sealed in stored_voices.sealed_profiles(storage):
        profile = _read_voice(name, sealed, identity)
        if profile is not None:
            voices[CLINICIAN if name == DEFAULT_VOICE else name] = profile
    return voices


def _read_voice(name: str, blob: bytes, identity) -> np.ndarray | None:
    try:
        data = json.loads(age.decrypt(blob, [identity]))
        if data.get("version") != _VOICE_VERSION:
            log.warning("voice profile %r was enrolled with the older speaker method; "
                        "enroll it again (holdnote enroll-voice) to name that speaker", name)
            return None
        return np.asarray(data["embedding"], dtype=np.float64)
    except (CryptoError, ValueError, KeyError, TypeError) as error:
        log.warning("voice profile %r unreadable (%s): that speaker stays unnamed; enroll again",
                    name, error)
        return None
