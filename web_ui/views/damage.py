"""Stored values that no longer decrypt: recorded once, listed while they last.

A flipped bit in one ciphertext must not take a page down (see
:mod:`web_ui.views.plaincache`), but it must not go unnoticed either. The
first time any worker meets a damaged value it is written to the settings
table and to the audit log (one entry per damaged value, however often the
page is opened). :func:`current_damage` lists the values that are still
damaged (their ciphertext is unchanged) without decrypting anything, so the
Device page and ``/healthz`` can report them while the device is locked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass

from appliance.access.audit import AuditLog
from appliance.errors import SessionNotFoundError
from appliance.store.db import Session, Storage, iso
from web_ui.views.plaincache import Where

log = logging.getLogger(__name__)

SETTING = "damaged_values"
ACTOR = "holdnote"  # the audit log's actor for what the web app finds by itself
ACTION = "data.damaged"
FIELD_NAMES = {"label": "client label", "flags": "risk-flag summary of the sessions list",
               "transcript": "transcript", "note": "note", "addendum": "addendum"}


def digest(blob: bytes) -> str:
    """A short name for one ciphertext: changes whenever the value is rewritten."""
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


@dataclass(frozen=True)
class DamagedValue:
    """One stored value that could not be read, and when that was found."""

    session_id: int
    field: str
    digest: str
    found_at: str
    reason: str = ""

    @property
    def name(self) -> str:
        """What the value is, in words."""
        return FIELD_NAMES.get(self.field, self.field)

    def describe(self) -> str:
        """One sentence for the Device page and /healthz (no client text)."""
        return f"Session {self.session_id}: the {self.name} cannot be read ({self.reason})."

    def to_json(self) -> dict:
        """The stored form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DamagedValue:
        """Read the stored form back."""
        return cls(int(data["session_id"]), str(data["field"]), str(data["digest"]),
                   str(data["found_at"]), str(data.get("reason") or ""))


def _load(storage: Storage) -> list[DamagedValue]:
    try:
        items = json.loads(storage.get_setting(SETTING) or "[]")
        return [DamagedValue.from_json(item) for item in items]
    except (ValueError, KeyError, TypeError) as error:
        log.warning("the list of damaged values is unreadable, starting again: %s", error)
        return []


def _current_blobs(storage: Storage, value: DamagedValue) -> list[bytes]:
    """The ciphertexts the field holds now (none once the session is gone)."""
    try:
        session = storage.get_session(value.session_id)
    except SessionNotFoundError:
        return []
    if value.field in ("label", "flags"):
        blob = session.label_enc if value.field == "label" else session.flags_enc
        return [blob] if blob else []
    if value.field == "transcript":
        transcript = storage.load_transcript(value.session_id)
        return [transcript] if transcript else []
    note, addenda = storage.load_note_with_addenda(value.session_id)
    if value.field == "note":
        return [note["note_enc"]] if note is not None else []
    return [row["text_enc"] for row in addenda]


def still_damaged(storage: Storage, value: DamagedValue) -> bool:
    """True while the damaged ciphertext is still stored (not repaired, replaced or deleted)."""
    return any(digest(blob) == value.digest for blob in _current_blobs(storage, value))


def current_damage(storage: Storage) -> list[DamagedValue]:
    """Every stored value found damaged that is still damaged, oldest first.

    Nothing is decrypted: this works while the device is locked. Values are
    found when a page, search or export first tries to read them (the search
    index reads every session soon after each login).
    """
    return [value for value in _load(storage) if still_damaged(storage, value)]


def session_damage(storage: Storage, session_id: int) -> list[DamagedValue]:
    """The still-damaged values of one session."""
    return [value for value in current_damage(storage) if value.session_id == session_id]


class DamageLog:
    """Records damaged values once: the ``on_damage`` reporter of the plaintext cache."""

    def __init__(self, storage: Storage, audit: AuditLog):
        self.storage = storage
        self.audit = audit
        self._lock = threading.Lock()

    def report(self, where: Where, blob: bytes, reason: str) -> None:
        """Remember a damaged value and audit it, unless it is already known."""
        found = DamagedValue(where.session_id, where.field, digest(blob),
                             iso(self.storage.now()), reason)
        with self._lock:
            known = _load(self.storage)
            if any((v.session_id, v.field, v.digest) == (found.session_id, found.field,
                                                         found.digest) for v in known):
                return
            # Values repaired since are dropped here, so the list stays short.
            kept = [v for v in known if still_damaged(self.storage, v)]
            self.storage.set_setting(SETTING, json.dumps([v.to_json() for v in [*kept, found]]))
        self.audit.append(ACTOR, ACTION, session_id=where.session_id,
                          detail=f"{where.field} {reason}; value {found.digest}")
        log.error("session %s: the stored %s %s; restore it from a backup",
                  where.session_id, where.field, reason)


# --- what the session page says ------------------------------------------------------------

_ADVICE = {
    "label": "The client label cannot be read. Type it again under Session details to "
             "replace it.",
    "flags": "The risk-flag count in the sessions list cannot be read; the flags on this "
             "page come from the transcript.",
    "transcript": "The transcript cannot be read. Ask IT to restore it from a backup.",
    "note": "The note cannot be read, so it cannot be edited, signed or exported. Ask IT to "
            "restore it from a backup; do not write a second note for this session meanwhile.",
    "addendum": "An addendum cannot be read. Ask IT to restore it from a backup.",
}


@dataclass(frozen=True)
class PageDamage:
    """What the session page says about damaged values: what is lost, what still works."""

    problems: tuple[str, ...]
    working: tuple[str, ...]


def _working(session: Session, fields: set[str], transcript: object, record) -> list[str]:
    works = []
    if session.audio_path and session.audio_path.exists() and not session.audio_deleted_at:
        works.append("The audio recording is still on the device.")
    if transcript is not None and "transcript" not in fields:
        works.append("The transcript can be read.")
    if record is not None and "note" not in fields:
        works.append("The signed note can be read." if record.signed
                     else "The draft note can be read and edited.")
    if "label" not in fields:
        works.append("The client label can be read.")
    works.append("Every other session is unaffected.")
    return works


def explain(session: Session, fields: list[str], *, transcript: object,
            record: object) -> PageDamage | None:
    """The damage notice for a session page, or ``None`` when nothing is damaged."""
    if not fields:
        return None
    unique = list(dict.fromkeys(fields))
    return PageDamage(tuple(_ADVICE.get(f, f"The {f} cannot be read.") for f in unique),
                      tuple(_working(session, set(unique), transcript, record)))
