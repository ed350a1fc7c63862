"""The ``voice_profiles`` table: enrolled voices, each an encrypted profile under a name.

The names are stored in clear (a clinician's name, never a client's), so pages and
drafting can tell which speaker labels are clinicians without a key or any
transcription code (the web workers import this). The profiles are age
ciphertexts that :mod:`appliance.transcription.checkpoints` writes and reads.
"""

from __future__ import annotations

from appliance.store.db import Storage, iso

# The profile enrolled without --name: it labels its speaker speakers.clinician_name.
DEFAULT_VOICE = "clinician"


def voice_names(storage: Storage) -> list[str]:
    """The enrolled profiles' names, oldest first."""
    with storage.connect() as conn:
        rows = conn.execute("SELECT name FROM voice_profiles ORDER BY created_at, name").fetchall()
    return [row["name"] for row in rows]


def put(storage: Storage, name: str, sealed: bytes) -> None:
    """Store (or replace) the encrypted profile named ``name``."""
    with storage.connect() as conn:
        conn.execute(
            "INSERT INTO voice_profiles(name, profile_enc, created_at) VALUES(?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET profile_enc = excluded.profile_enc, "
            "created_at = excluded.created_at",
            (name, sealed, iso(storage.now())))


def sealed_profiles(storage: Storage) -> list[tuple[str, bytes]]:
    """Every (name, encrypted profile), by name."""
    with storage.connect() as conn:
        rows = conn.execute("SELECT name, profile_enc FROM voice_profiles ORDER BY name").fetchall()
    return [(row["name"], row["profile_enc"]) for row in rows]


def delete(storage: Storage, name: str) -> bool:
    """Remove a profile; False when there is none by that name."""
    with storage.connect() as conn:
        return conn.execute("DELETE FROM voice_profiles WHERE name = ?", (name,)).rowcount > 0
