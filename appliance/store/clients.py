"""The owner of the ``clients`` and ``client_consents`` tables.

A client belongs to a clinician (``owner_id``) like a session does; what
identifies the client (name or initials, identifier, start date, goals) is
one age ciphertext, ``record_enc``, so only ids, status and dates are plain.
Consents are kept as given: a withdrawal dates the consent, it never
deletes it, so the history of what was agreed stays on record.

Functions here take the caller's connection, so :class:`appliance.store.db.Storage`
can put them in one transaction with the session rows they go with.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date

from appliance.errors import InvalidStateError, StorageError

ACTIVE, CLOSED = "active", "closed"
STATUSES = (ACTIVE, CLOSED)


class ClientNotFoundError(StorageError, LookupError):
    """No client with that id (never created, or deleted)."""


class ClientClosedError(InvalidStateError):
    """The client is closed: no session may be assigned to it until it is reopened."""


@dataclass(frozen=True)
class ClientRow:
    """A client as stored: the record stays encrypted."""

    id: int
    owner_id: int | None
    record_enc: bytes = field(repr=False)
    status: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class ConsentRow:
    """One consent as stored (scope as a tuple of scope names)."""

    id: int
    client_id: int
    given_on: date
    form_version: str
    obtained_by: str
    scope: tuple[str, ...]
    withdrawn_on: date | None
    created_at: str
    created_by: str


def _client(row: sqlite3.Row) -> ClientRow:
    return ClientRow(row["id"], row["owner_id"], row["record_enc"], row["status"],
                     row["created_at"], row["updated_at"])


def _consent(row: sqlite3.Row) -> ConsentRow:
    withdrawn = row["withdrawn_on"]
    return ConsentRow(
        id=row["id"], client_id=row["client_id"], given_on=date.fromisoformat(row["given_on"]),
        form_version=row["form_version"], obtained_by=row["obtained_by"],
        scope=tuple(s for s in row["scope"].split(",") if s),
        withdrawn_on=date.fromisoformat(withdrawn) if withdrawn else None,
        created_at=row["created_at"], created_by=row["created_by"])


def create(conn: sqlite3.Connection, owner_id: int, record_enc: bytes, when: str) -> int:
    """A new active client of ``owner_id``; its id."""
    cursor = conn.execute(
        "INSERT INTO clients(owner_id, record_enc, status, created_at, updated_at) "
        "VALUES(?, ?, ?, ?, ?)", (owner_id, record_enc, ACTIVE, when, when))
    if cursor.lastrowid is None:  # sqlite3 sets it after every INSERT
        raise StorageError("the new client got no id")
    return cursor.lastrowid


def get(conn: sqlite3.Connection, client_id: int) -> ClientRow | None:
    """One client, or None."""
    row = conn.execute("SELECT * FROM clients WHERE id = ?", (client_id,)).fetchone()
    return _client(row) if row else None


def of_owner(conn: sqlite3.Connection, owner_id: int) -> list[ClientRow]:
    """A clinician's clients: active first, then closed, each oldest first."""
    rows = conn.execute(
        "SELECT * FROM clients WHERE owner_id = ? "
        "ORDER BY status = 'closed', created_at, id", (owner_id,)).fetchall()
    return [_client(r) for r in rows]


def update(conn: sqlite3.Connection, client_id: int, when: str, *,
           record_enc: bytes | None = None, status: str | None = None) -> None:
    """Replace the record and/or the status; :class:`ClientNotFoundError` if there is no client."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"a client's status is one of {', '.join(STATUSES)}, not {status!r}")
    cursor = conn.execute(
        "UPDATE clients SET record_enc = COALESCE(?, record_enc), status = COALESCE(?, status), "
        "updated_at = ? WHERE id = ?", (record_enc, status, when, client_id))
    if cursor.rowcount == 0:
        raise ClientNotFoundError(f"no client {client_id}")


def delete(conn: sqlite3.Connection, client_id: int) -> None:
    """Remove a client and its consents; its sessions stay, unassigned (the foreign key does it)."""
    cursor = conn.execute("DELETE FROM clients WHERE id = ?", (client_id,))
    if cursor.rowcount == 0:
        raise ClientNotFoundError(f"no client {client_id}")


def require_active(conn: sqlite3.Connection, client_id: int) -> ClientRow:
    """The client, if it exists and is active (what a session may be assigned to)."""
    row = get(conn, client_id)
    if row is None:
        raise ClientNotFoundError(f"no client {client_id}")
    if row.status != ACTIVE:
        raise ClientClosedError(f"client {client_id} is closed; reopen the client first")
    return row


def add_consent(conn: sqlite3.Connection, client_id: int, *, given_on: date, form_version: str,
                obtained_by: str, scope: tuple[str, ...], when: str, by: str) -> int:
    """Record a consent given on ``given_on``; its id."""
    if get(conn, client_id) is None:
        raise ClientNotFoundError(f"no client {client_id}")
    cursor = conn.execute(
        "INSERT INTO client_consents(client_id, given_on, form_version, obtained_by, scope, "
        "created_at, created_by) VALUES(?, ?, ?, ?, ?, ?, ?)",
        (client_id, given_on.isoformat(), form_version, obtained_by, ",".join(scope), when, by))
    if cursor.lastrowid is None:
        raise StorageError("the new consent got no id")
    return cursor.lastrowid


def withdraw_consent(conn: sqlite3.Connection, consent_id: int, on: date) -> bool:
    """Date a consent's withdrawal; False if there is no such consent or it was withdrawn already."""
    cursor = conn.execute(
        "UPDATE client_consents SET withdrawn_on = ? WHERE id = ? AND withdrawn_on IS NULL",
        (on.isoformat(), consent_id))
    return cursor.rowcount == 1


def consents(conn: sqlite3.Connection, client_id: int) -> list[ConsentRow]:
    """A client's consents, newest first (by the date given, then by entry)."""
    rows = conn.execute("SELECT * FROM client_consents WHERE client_id = ? "
                        "ORDER BY given_on DESC, id DESC", (client_id,)).fetchall()
    return [_consent(r) for r in rows]


def consent(conn: sqlite3.Connection, consent_id: int) -> ConsentRow | None:
    """One consent, or None."""
    row = conn.execute("SELECT * FROM client_consents WHERE id = ?", (consent_id,)).fetchone()
    return _consent(row) if row else None


def fingerprints(conn: sqlite3.Connection) -> dict[int, str]:
    """A tag per client that changes whenever its record does (for the search index)."""
    rows = conn.execute("SELECT id, hex(substr(record_enc, -16)) AS v FROM clients").fetchall()
    return {r["id"]: r["v"] for r in rows}
