"""The owner of the ``transcripts`` and ``transcript_versions`` tables.

``transcripts.result_enc`` is always the transcript as it reads now: the
recognised one, or the latest correction of it, so every reader (the page,
search, export, a redraft) needs to know nothing about corrections.
``transcripts.version`` counts the corrections. Each version ever saved is kept
encrypted in ``transcript_versions``: version 0 (the recognised transcript) is
copied there at the first correction, and each correction adds its own row,
with when, who and what changed (ids and line numbers, never client text).

Functions here take the caller's connection, so :class:`appliance.store.db.Storage`
can put them in one transaction with the session row they go with.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from appliance.errors import InvalidStateError

RECOGNISED = "recognised by the overnight job"


class VersionConflictError(InvalidStateError):
    """The transcript changed since the version a correction was based on."""

    def __init__(self, session_id: int, based_on: int, current: int | None):
        self.based_on, self.current = based_on, current
        super().__init__(
            f"the transcript of session {session_id} is at version {current}, not {based_on}: "
            "someone saved a correction first; reload it and correct again")


@dataclass(frozen=True)
class Stored:
    """A session's current transcript: its ciphertext and version number."""

    result_enc: bytes = field(repr=False)
    version: int
    created_at: str


@dataclass(frozen=True)
class Version:
    """One saved version of a transcript (``result_enc`` only when asked for)."""

    version: int
    created_at: str
    author: str | None
    summary: str
    result_enc: bytes | None = field(default=None, repr=False)


def save(conn: sqlite3.Connection, session_id: int, result_enc: bytes, when: str) -> None:
    """Store a freshly recognised transcript (replacing any earlier one and its versions)."""
    conn.execute("DELETE FROM transcript_versions WHERE session_id = ?", (session_id,))
    conn.execute(
        "INSERT INTO transcripts(session_id, result_enc, created_at, version) VALUES(?, ?, ?, 0) "
        "ON CONFLICT(session_id) DO UPDATE SET result_enc = excluded.result_enc, "
        "created_at = excluded.created_at, version = 0",
        (session_id, result_enc, when))


def load(conn: sqlite3.Connection, session_id: int) -> Stored | None:
    """The current transcript, or None."""
    row = conn.execute("SELECT result_enc, version, created_at FROM transcripts "
                       "WHERE session_id = ?", (session_id,)).fetchone()
    return Stored(row["result_enc"], row["version"], row["created_at"]) if row else None


def exists(conn: sqlite3.Connection, session_id: int) -> bool:
    """Whether the session has a transcript."""
    return conn.execute("SELECT 1 FROM transcripts WHERE session_id = ?",
                        (session_id,)).fetchone() is not None


def correct(conn: sqlite3.Connection, session_id: int, *, based_on: int, result_enc: bytes,
            when: str, author: str, summary: str) -> int:
    """Replace the transcript with a correction of version ``based_on``; the new version.

    A compare-and-swap inside the caller's write transaction: when the stored
    version is not ``based_on`` (another tab saved first) nothing is written and
    :class:`VersionConflictError` is raised.
    """
    # The recognised transcript joins the history before its first correction replaces it.
    conn.execute(
        "INSERT INTO transcript_versions(session_id, version, created_at, author, summary, "
        "result_enc) SELECT session_id, 0, created_at, NULL, ?, result_enc FROM transcripts "
        "WHERE session_id = ? AND version = 0 AND version = ? "
        "ON CONFLICT(session_id, version) DO NOTHING", (RECOGNISED, session_id, based_on))
    cursor = conn.execute(
        "UPDATE transcripts SET result_enc = ?, version = version + 1 "
        "WHERE session_id = ? AND version = ?", (result_enc, session_id, based_on))
    if cursor.rowcount != 1:
        current = load(conn, session_id)
        raise VersionConflictError(session_id, based_on, current.version if current else None)
    conn.execute(
        "INSERT INTO transcript_versions(session_id, version, created_at, author, summary, "
        "result_enc) VALUES(?, ?, ?, ?, ?, ?)",
        (session_id, based_on + 1, when, author, summary, result_enc))
    return based_on + 1


def versions(conn: sqlite3.Connection, session_id: int) -> list[Version]:
    """Every saved version, the recognised one first (without their ciphertexts)."""
    rows = conn.execute("SELECT version, created_at, author, summary FROM transcript_versions "
                        "WHERE session_id = ? ORDER BY version", (session_id,)).fetchall()
    return [Version(r["version"], r["created_at"], r["author"], r["summary"]) for r in rows]


def version(conn: sqlite3.Connection, session_id: int, number: int) -> Version | None:
    """One saved version with its ciphertext, or None."""
    row = conn.execute("SELECT version, created_at, author, summary, result_enc "
                       "FROM transcript_versions WHERE session_id = ? AND version = ?",
                       (session_id, number)).fetchone()
    return Version(row["version"], row["created_at"], row["author"], row["summary"],
                   row["result_enc"]) if row else None


def delete(conn: sqlite3.Connection, session_id: int) -> bool:
    """Remove the transcript and every version of it; False if there was none."""
    conn.execute("DELETE FROM transcript_versions WHERE session_id = ?", (session_id,))
    cursor = conn.execute("DELETE FROM transcripts WHERE session_id = ?", (session_id,))
    return cursor.rowcount == 1


def fingerprints(conn: sqlite3.Connection) -> dict[int, str]:
    """A tag per session that changes whenever its transcript does (for the search index)."""
    rows = conn.execute("SELECT session_id, created_at || ':' || version AS v "
                        "FROM transcripts").fetchall()
    return {r["session_id"]: r["v"] for r in rows}
