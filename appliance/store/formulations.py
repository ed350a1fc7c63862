"""The ``formulations`` table: a client's case conceptualizations, one row per version.

A version is asked for (``queued``), drafted by the model (``drafting``, then
``draft``, or ``failed`` with a reason), edited by the clinician and signed
(``signed``): a signed version is frozen, and the next draft or edit starts
version n+1, so older versions stay readable. Only the newest version is ever
unsigned. The body is age ciphertext (:mod:`appliance.clients.formulation`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from appliance.errors import InvalidStateError
from appliance.store.db import Storage, iso

SIGNED = ("This case conceptualization is signed and can no longer be changed. "
          "Draft a new version instead.")
BUSY = "The model is drafting this case conceptualization now; wait until it is done."


@dataclass(frozen=True)
class FormulationRow:
    """One version as stored (the body still encrypted)."""

    client_id: int
    version: int
    state: str
    reason: str | None
    progress: float
    body_enc: bytes | None
    created_at: str
    updated_at: str
    updated_by: str | None
    signed_at: str | None
    signed_by: str | None


def _row(row: sqlite3.Row) -> FormulationRow:
    return FormulationRow(row["client_id"], row["version"], row["state"], row["reason"],
                          float(row["progress"]), row["body_enc"], row["created_at"],
                          row["updated_at"], row["updated_by"], row["signed_at"], row["signed_by"])


def versions(storage: Storage, client_id: int) -> list[FormulationRow]:
    """Every version of the client's, newest first."""
    with storage.read() as conn:
        rows = conn.execute("SELECT * FROM formulations WHERE client_id = ? ORDER BY version DESC",
                            (client_id,)).fetchall()
    return [_row(r) for r in rows]


def newest(storage: Storage, client_id: int) -> FormulationRow | None:
    """The newest version, or None."""
    found = versions(storage, client_id)
    return found[0] if found else None


def version(storage: Storage, client_id: int, number: int) -> FormulationRow | None:
    """One version, or None."""
    with storage.read() as conn:
        row = conn.execute("SELECT * FROM formulations WHERE client_id = ? AND version = ?",
                           (client_id, number)).fetchone()
    return None if row is None else _row(row)


def _newest(conn: sqlite3.Connection, client_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT version, state FROM formulations WHERE client_id = ? "
                        "ORDER BY version DESC LIMIT 1", (client_id,)).fetchone()


def _insert(conn: sqlite3.Connection, client_id: int, number: int, state: str, moment: str,
            by: str | None, body_enc: bytes | None = None) -> None:
    conn.execute("INSERT INTO formulations(client_id, version, state, body_enc, created_at, "
                 "updated_at, updated_by) VALUES(?, ?, ?, ?, ?, ?, ?)",
                 (client_id, number, state, body_enc, moment, moment, by))


def request(storage: Storage, client_id: int, by: str) -> int:
    """Queue a draft: the newest unsigned version is drafted again, else version n+1; its number."""
    moment = iso(storage.now())
    with storage.connect() as conn:
        row = _newest(conn, client_id)
        if row is None or row["state"] == "signed":
            number = 1 if row is None else row["version"] + 1
            _insert(conn, client_id, number, "queued", moment, by)
            return number
        if row["state"] != "drafting":
            conn.execute("UPDATE formulations SET state = 'queued', reason = NULL, progress = 0, "
                         "updated_at = ? WHERE client_id = ? AND version = ?",
                         (moment, client_id, row["version"]))
        return int(row["version"])


def waiting(storage: Storage) -> list[tuple[int, int]]:
    """(client, version) of every version waiting for the model, oldest request first.

    ``drafting`` too: a run stopped mid-way is taken up again by the next.
    """
    with storage.read() as conn:
        rows = conn.execute("SELECT client_id, version FROM formulations WHERE state IN "
                            "('queued', 'drafting') ORDER BY updated_at, client_id").fetchall()
    return [(r["client_id"], r["version"]) for r in rows]


def claim(storage: Storage, client_id: int, number: int) -> bool:
    """Mark a waiting version as being drafted; False when it no longer waits."""
    with storage.connect() as conn:
        return conn.execute(
            "UPDATE formulations SET state = 'drafting', reason = NULL, updated_at = ? "
            "WHERE client_id = ? AND version = ? AND state IN ('queued', 'drafting')",
            (iso(storage.now()), client_id, number)).rowcount > 0


def drafted(storage: Storage, client_id: int, number: int, body_enc: bytes, *,
            progress: float, state: str = "drafting", reason: str | None = None) -> bool:
    """Store what the model drafted so far (``state`` "draft" when done); False once signed."""
    with storage.connect() as conn:
        return conn.execute(
            "UPDATE formulations SET body_enc = ?, progress = ?, state = ?, reason = ?, "
            "updated_at = ?, updated_by = 'holdnote' WHERE client_id = ? AND version = ? "
            "AND state != 'signed'",
            (body_enc, progress, state, reason, iso(storage.now()), client_id, number)).rowcount > 0


def failed(storage: Storage, client_id: int, number: int, reason: str) -> None:
    """The version could not be drafted: its state says so, with the reason; its text stays."""
    with storage.connect() as conn:
        conn.execute("UPDATE formulations SET state = 'failed', reason = ?, updated_at = ? "
                     "WHERE client_id = ? AND version = ? AND state != 'signed'",
                     (reason, iso(storage.now()), client_id, number))


def save(storage: Storage, client_id: int, number: int, body_enc: bytes, by: str) -> None:
    """The clinician's edit of version ``number``; refused once signed or while drafting."""
    with storage.connect() as conn:
        row = conn.execute("SELECT state FROM formulations WHERE client_id = ? AND version = ?",
                           (client_id, number)).fetchone()
        _check_editable(row)
        state = "draft" if row["state"] in ("failed", "draft") else row["state"]
        conn.execute("UPDATE formulations SET body_enc = ?, state = ?, updated_at = ?, "
                     "updated_by = ? WHERE client_id = ? AND version = ?",
                     (body_enc, state, iso(storage.now()), by, client_id, number))


def sign(storage: Storage, client_id: int, number: int, body_enc: bytes, by: str) -> None:
    """Store the final text and sign version ``number``: it is frozen from now on."""
    moment = iso(storage.now())
    with storage.connect() as conn:
        row = conn.execute("SELECT state FROM formulations WHERE client_id = ? AND version = ?",
                           (client_id, number)).fetchone()
        _check_editable(row)
        if row["state"] == "queued":
            raise InvalidStateError("This case conceptualization waits for the model; sign it "
                                    "once it is drafted.")
        conn.execute("UPDATE formulations SET body_enc = ?, state = 'signed', updated_at = ?, "
                     "updated_by = ?, signed_at = ?, signed_by = ?, progress = 1 "
                     "WHERE client_id = ? AND version = ?",
                     (body_enc, moment, by, moment, by, client_id, number))


def _check_editable(row: sqlite3.Row | None) -> None:
    if row is None:
        raise InvalidStateError("There is no such version of this case conceptualization.")
    if row["state"] == "signed":
        raise InvalidStateError(SIGNED)
    if row["state"] == "drafting":
        raise InvalidStateError(BUSY)
