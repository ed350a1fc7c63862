"""The owner of the ``process_notes`` table: a clinician's private note on a session.

A process note (a "psychotherapy note" in the health-privacy sense) is one
per session and author, kept apart from the progress note: it is read only by
its author, and nothing that leaves the device or reaches the model (exports,
search, drafting, the client record) reads this table. The body is age
ciphertext (encrypted by the caller); only ids and times are plain.

Every query is keyed on the author as well as the session, so there is no way
to ask for "the process notes of a session": a colleague's note cannot be read,
and whether one exists cannot be learnt, through these functions. Deleting the
session or the author's account deletes the note (``ON DELETE CASCADE``).

Two tabs editing one note do not overwrite each other silently: a save or a
delete names the version it was based on (:func:`version_of` of the ciphertext
the page showed, ``""`` for none) and is refused when the stored one differs.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field

from appliance.errors import InvalidStateError
from appliance.store.db import Storage, iso

NONE = ""  # the version of a note that does not exist yet


class ProcessNoteConflictError(InvalidStateError):
    """The process note changed (another tab saved or deleted it) since the page was loaded."""

    def __init__(self, session_id: int, saved_at: str | None):
        self.saved_at = saved_at
        what = (f"was saved again at {saved_at}" if saved_at else "was deleted")
        super().__init__(f"your process note on session {session_id} {what} in another "
                         "window since this page was loaded")


@dataclass(frozen=True)
class ProcessNoteRow:
    """One author's process note on one session, as stored (the body still encrypted)."""

    session_id: int
    author_id: int
    body_enc: bytes = field(repr=False)
    created_at: str
    updated_at: str

    @property
    def version(self) -> str:
        """The token a page sends back to save over exactly this note."""
        return version_of(self.body_enc)


def version_of(body_enc: bytes | None) -> str:
    """A short token that changes whenever the note is rewritten (age never repeats a ciphertext)."""
    return hashlib.sha256(body_enc).hexdigest()[:16] if body_enc else NONE


def _row(row: sqlite3.Row) -> ProcessNoteRow:
    return ProcessNoteRow(row["session_id"], row["author_id"], row["body_enc"],
                          row["created_at"], row["updated_at"])


def _load(conn: sqlite3.Connection, session_id: int, author_id: int) -> ProcessNoteRow | None:
    row = conn.execute("SELECT * FROM process_notes WHERE session_id = ? AND author_id = ?",
                       (session_id, author_id)).fetchone()
    return _row(row) if row else None


def _check(current: ProcessNoteRow | None, session_id: int, based_on: str) -> None:
    if version_of(current.body_enc if current else None) != based_on:
        raise ProcessNoteConflictError(session_id, current.updated_at if current else None)


def load(storage: Storage, session_id: int, author_id: int) -> ProcessNoteRow | None:
    """The author's process note on the session, or None."""
    with storage.read() as conn:
        return _load(conn, session_id, author_id)


def exists(storage: Storage, session_id: int, author_id: int) -> bool:
    """Whether the author has a process note on the session."""
    with storage.read() as conn:
        return conn.execute("SELECT 1 FROM process_notes WHERE session_id = ? AND author_id = ?",
                            (session_id, author_id)).fetchone() is not None


def save(storage: Storage, session_id: int, author_id: int, body_enc: bytes, *,
         based_on: str) -> ProcessNoteRow:
    """Write the author's note over the version ``based_on`` (``NONE``: a new note); the row saved.

    A compare-and-swap in one write transaction: :class:`ProcessNoteConflictError`
    when the stored note is not the one the page showed; nothing is written then.
    ``sqlite3.IntegrityError`` if the session or the author does not exist.
    """
    moment = iso(storage.now())
    with storage.connect() as conn:
        current = _load(conn, session_id, author_id)
        _check(current, session_id, based_on)
        conn.execute(
            "INSERT INTO process_notes(session_id, author_id, body_enc, created_at, updated_at) "
            "VALUES(?, ?, ?, ?, ?) ON CONFLICT(session_id, author_id) DO UPDATE SET "
            "body_enc = excluded.body_enc, updated_at = excluded.updated_at",
            (session_id, author_id, body_enc, moment, moment))
    created = current.created_at if current else moment
    return ProcessNoteRow(session_id, author_id, body_enc, created, moment)


def delete(storage: Storage, session_id: int, author_id: int, *,
           based_on: str | None = None) -> bool:
    """Remove the author's note (only the version ``based_on``, when given); False if there was none.

    The write-ahead log is folded in afterwards, so ``secure_delete`` overwrites
    the old pages in the database file too.
    """
    with storage.connect() as conn:
        current = _load(conn, session_id, author_id)
        if current is None:
            return False
        if based_on is not None:
            _check(current, session_id, based_on)
        conn.execute("DELETE FROM process_notes WHERE session_id = ? AND author_id = ?",
                     (session_id, author_id))
    storage.checkpoint()
    return True
