"""Reading and writing a session's encrypted records for the web pages.

Everything client-identifying is decrypted with the unlocked practice
identity on the way out and encrypted to the practice recipient on the way
in; only ciphertext reaches the database. Writes that must not race (signing
against an edit, an edit against another tab's edit) check and change in one
transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from appliance import age
from appliance.errors import (
    HoldnoteError,
    IllegalTransitionError,
    InvalidStateError,
    SessionNotFoundError,
)
from appliance.notes.render import section_text, unfilled_sections
from appliance.store.db import (
    Session,
    State,
    Storage,
    Viewer,
    apply_transition,
    iso,
    note_for_update,
    require_session,
    write_note,
)
from web_ui.views.plaincache import Damaged, PlainCache, Where

# SQLite integers are signed 64-bit; a larger id in a URL is simply not found.
MAX_ID = 2**63 - 1
MAX_SECTION_CHARS = 20_000
MAX_ADDENDUM_CHARS = 20_000
MAX_LABEL_CHARS = 120
# The author the overnight job writes on a note it drafted (transcription/job.py).
SYSTEM_AUTHOR = "holdnote"
# Background saves are audited once per stretch of editing, not once per pause in
# typing: the first after this long without a save by the same person.
AUTOSAVE_AUDIT_GAP = timedelta(minutes=10)


class IncompleteNoteError(HoldnoteError, ValueError):
    """A note cannot be signed while sections are empty or hold only their template prompt."""

    def __init__(self, titles: list[str]):
        self.titles = titles
        if len(titles) == 1:
            state = f"{titles[0]} is empty or still holds only its template prompt"
        else:
            named = ", ".join(titles[:-1]) + " and " + titles[-1]
            state = f"{named} are empty or still hold only their template prompts"
        super().__init__(
            f"This note cannot be signed yet: {state}. Write each one (\u201cNot discussed\u201d "
            "is an answer too) and sign again. Your text is kept below; nothing was signed.")


def encrypt_json(value: Any, recipient: age.X25519Recipient) -> bytes:
    """Encrypt a JSON-serialisable value to the practice recipient."""
    return age.encrypt(json.dumps(value, ensure_ascii=False).encode("utf-8"), [recipient])


def encrypt_text(text: str, recipient: age.X25519Recipient) -> bytes:
    """Encrypt a UTF-8 text to the practice recipient."""
    return age.encrypt(text.encode("utf-8"), [recipient])


def version_of(blob: bytes | None) -> str:
    """A short token that changes whenever a ciphertext is rewritten."""
    return hashlib.sha256(blob or b"").hexdigest()[:16]


def get_session(storage: Storage, session_id: int) -> Session:
    """A session, or :class:`SessionNotFoundError` (also for out-of-range ids)."""
    if not 0 < session_id <= MAX_ID:
        raise SessionNotFoundError(f"no session {session_id}")
    return storage.get_session(session_id)


# --- the session list -------------------------------------------------------------


@dataclass(frozen=True)
class ListRow:
    """One line of the sessions list, with its label and flags decrypted."""

    session: Session
    label: str | Damaged | None
    flags: tuple[dict, ...] | Damaged
    # Listed by date and length only (unassigned, or a colleague's for an admin).
    listed_only: bool = False

    @property
    def flag_total(self) -> int:
        """How many risk-language passages were flagged."""
        if isinstance(self.flags, Damaged):
            return 0
        return sum(int(f.get("count", 0) or 0) for f in self.flags if isinstance(f, dict))

    @property
    def damaged(self) -> tuple[str, ...]:
        """The fields of this row that cannot be read ("label", "flags")."""
        return tuple(value.field for value in (self.label, self.flags)
                     if isinstance(value, Damaged))


def _flags(plain: PlainCache, session: Session,
           identity: age.X25519Identity) -> tuple[dict, ...] | Damaged:
    if not session.flags_enc:
        return ()
    flags = plain.json(session.flags_enc, identity, Where(session.id, "flags"))
    return flags if isinstance(flags, Damaged) else tuple(flags)


def list_rows(storage: Storage, plain: PlainCache, identity: age.X25519Identity, *,
              states=None, since=None, until=None, limit=50, offset=0,
              viewer: Viewer | None = None) -> list[ListRow]:
    """One page of the list; only the rows shown are decrypted, a damaged value only marks its row.

    With a ``viewer``, only the sessions they may see are listed, and only those
    they may read are decrypted (the others are date and length only).
    """
    sessions = storage.list_sessions(states=states, since=since, until=until,
                                     limit=limit, offset=offset, viewer=viewer)
    readable = storage.readable_ids(viewer) if viewer is not None else None
    return [ListRow(s, plain.text(s.label_enc, identity, Where(s.id, "label")),
                    _flags(plain, s, identity))
            if readable is None or s.id in readable else ListRow(s, None, (), listed_only=True)
            for s in sessions]


# --- notes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Addendum:
    """A dated addition to a signed note (its text :class:`Damaged` if it cannot be read)."""

    id: int
    text: str | Damaged
    created_at: datetime
    author: str


@dataclass(frozen=True)
class NoteRecord:
    """The editable note of a session, decrypted, with its signature and addenda.

    ``damaged`` is set when the note's ciphertext cannot be read: ``note`` is
    then empty and the page offers no editor (saving would replace the
    clinician's text with nothing).
    """

    note: dict
    version: str
    updated_at: datetime
    updated_by: str | None
    signed_at: datetime | None
    signed_by: str | None
    addenda: tuple[Addendum, ...]
    damaged: Damaged | None = None

    @property
    def signed(self) -> bool:
        """True once the note is read-only."""
        return self.signed_at is not None

    @property
    def drafted_by_holdnote(self) -> bool:
        """True while the note is the overnight job's draft, untouched by a person."""
        return self.updated_by == SYSTEM_AUTHOR and not self.signed

    @property
    def sections(self) -> list[dict]:
        """The note's sections (key, title, text, auto), tolerating missing keys."""
        return [s for s in self.note.get("sections") or [] if isinstance(s, dict)]

    @staticmethod
    def shown(section: dict) -> str:
        """A section's text as pages show it: without its template prompt ("" if nothing else)."""
        return section_text(section)

    def starts_burst(self, author: str, moment: datetime) -> bool:
        """True when a background save at ``moment`` begins a new stretch of editing by ``author``."""
        return self.updated_by != author or moment - self.updated_at >= AUTOSAVE_AUDIT_GAP


def load_note(storage: Storage, plain: PlainCache, identity: age.X25519Identity,
              session_id: int) -> NoteRecord | None:
    """The note of a session, or ``None`` before the overnight job drafted one."""
    row, addenda = storage.load_note_with_addenda(session_id)
    if row is None:
        return None
    note = plain.json(row["note_enc"], identity, Where(session_id, "note"))
    return NoteRecord(
        note=note if isinstance(note, dict) else {},
        version=version_of(row["note_enc"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        updated_by=row["updated_by"],
        signed_at=datetime.fromisoformat(row["signed_at"]) if row["signed_at"] else None,
        signed_by=row["signed_by"],
        addenda=tuple(Addendum(a["id"], plain.text(a["text_enc"], identity,
                                                   Where(session_id, "addendum")) or "",
                               datetime.fromisoformat(a["created_at"]), a["author"])
                      for a in addenda),
        damaged=note if isinstance(note, Damaged) else None,
    )


def clean_text(text: str, limit: int) -> str:
    """Normalise line ends and refuse text too long to be a note."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > limit:
        raise ValueError(f"a section may hold at most {limit:,} characters; "
                         f"this one has {len(text):,}")
    return text


def edited_note(note: dict, texts: dict[str, str]) -> dict:
    """A copy of ``note`` with the texts of the named sections replaced."""
    new = dict(note)
    sections = []
    for original in note.get("sections") or []:
        section = dict(original)
        key = str(section.get("key", ""))
        if key in texts:
            section["text"] = clean_text(texts[key], MAX_SECTION_CHARS)
        sections.append(section)
    new["sections"] = sections
    return new


def save_note(storage: Storage, session_id: int, note: dict, base_version: str,
              recipient: age.X25519Recipient, author: str) -> str:
    """Store an edited draft, refusing if it was signed or changed since it was loaded.

    Returns the new version, which the next save from the same page must name.
    """
    blob = encrypt_json(note, recipient)
    with storage.connect() as conn:
        _check_editable(note_for_update(conn, session_id), session_id, base_version)
        write_note(conn, session_id, blob, author, storage.now())
    return version_of(blob)


def _check_editable(row, session_id: int, base_version: str) -> None:
    if row is None:
        raise InvalidStateError(f"session {session_id} has no note yet")
    if row["signed_at"]:
        raise InvalidStateError(
            "This note is signed and can no longer be changed. Add a dated addendum instead.")
    if base_version and version_of(row["note_enc"]) != base_version:
        raise InvalidStateError(
            "This note was changed in another window since you opened it. Your text is "
            "shown below: copy what you need, reload the page and apply it again.")


def sign_note(storage: Storage, session_id: int, note: dict, base_version: str,
              recipient: age.X25519Recipient, signer: str) -> datetime:
    """Store the final text and sign it: the note becomes read-only and the session SIGNED.

    Refused with :class:`IncompleteNoteError` while a section is empty or holds only its prompt.
    """
    missing = unfilled_sections(note)
    if missing:
        raise IncompleteNoteError(missing)
    moment = storage.now()
    note = {**note, "status": "signed", "signed_by": signer, "signed_at": iso(moment)}
    blob = encrypt_json(note, recipient)
    with storage.connect() as conn:
        require_session(conn, session_id)
        _check_editable(note_for_update(conn, session_id), session_id, base_version)
        _become_signed(conn, session_id)
        write_note(conn, session_id, blob, signer, moment, signed=True)
    return moment


def _become_signed(conn: sqlite3.Connection, session_id: int) -> None:
    """Move the session to SIGNED in the signing transaction, worded for the page."""
    try:
        apply_transition(conn, session_id, State.SIGNED)
    except IllegalTransitionError as error:
        raise IllegalTransitionError(
            f"Only a draft can be signed; this session is {error.current}.",
            session_id=session_id, current=error.current, to=error.to) from None


def add_addendum(storage: Storage, session_id: int, text: str,
                 recipient: age.X25519Recipient, author: str) -> None:
    """Append a dated addendum to a signed note."""
    text = clean_text(text, MAX_ADDENDUM_CHARS).strip()
    if not text:
        raise ValueError("the addendum is empty")
    storage.add_addendum(session_id, encrypt_text(text, recipient), author)


def save_details(storage: Storage, session_id: int, label: str, consent: bool,
                 recipient: age.X25519Recipient) -> Session:
    """Store the client label (encrypted) and whether consent was documented."""
    label = " ".join(label.split())
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"the client label may have at most {MAX_LABEL_CHARS} characters")
    label_enc = encrypt_text(label, recipient) if label else None
    return storage.update_session(session_id, label_enc=label_enc, consent=int(consent))

