"""The names of the enrolled voice profiles, for pages and drafting that label speakers.

The profiles themselves are encrypted and read by the transcription job
(:mod:`appliance.transcription.checkpoints`); their names are stored in clear, so
this needs no key and no transcription code (the web workers import it).
"""

from __future__ import annotations

from appliance.store.db import Storage

# The profile enrolled without --name: it labels its speaker speakers.clinician_name.
DEFAULT_VOICE = "clinician"


def voice_names(storage: Storage) -> list[str]:
    """The enrolled profiles' names, oldest first."""
    with storage.connect() as conn:
        rows = conn.execute("SELECT name FROM voice_profiles ORDER BY created_at, name").fetchall()
    return [row["name"] for row in rows]
