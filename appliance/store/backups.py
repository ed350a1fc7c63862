"""The ``backups`` table: one row per backup attempt, written or failed.

A row names the encrypted file in the backup target (never its content), its
size, how many sessions it holds, when it was verified and, for a failed
attempt, why. The device page and ``/healthz`` read the newest verified row;
``holdnote backup list`` reads the recent ones.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from appliance.store.db import Storage, iso


@dataclass(frozen=True)
class BackupRecord:
    """One backup as recorded: ``verified_at`` is None until verified, ``error`` None unless it failed."""

    id: int
    created_at: datetime
    file_name: str
    target_dir: str
    size_bytes: int
    sessions: int
    verified_at: datetime | None
    error: str | None

    @property
    def path(self) -> Path:
        """Where the backup file is (or was) written."""
        return Path(self.target_dir) / self.file_name

    @property
    def ok(self) -> bool:
        """True for a backup that was written and verified."""
        return self.verified_at is not None and self.error is None


def _record(row: sqlite3.Row) -> BackupRecord:
    verified = row["verified_at"]
    return BackupRecord(row["id"], datetime.fromisoformat(row["created_at"]), row["file_name"],
                        row["target_dir"], row["size_bytes"], row["sessions"],
                        datetime.fromisoformat(verified) if verified else None, row["error"])


def _get(conn: sqlite3.Connection, backup_id: int) -> BackupRecord:
    row = conn.execute("SELECT * FROM backups WHERE id = ?", (backup_id,)).fetchone()
    return _record(row)


def add(storage: Storage, *, created_at: datetime, file_name: str, target_dir: str | Path,
        size_bytes: int, sessions: int, verified_at: datetime | None = None,
        error: str | None = None) -> BackupRecord:
    """Record a backup file written to ``target_dir``; the new row."""
    with storage.connect() as conn:
        cursor = conn.execute(
            "INSERT INTO backups(created_at, file_name, target_dir, size_bytes, sessions, "
            "verified_at, error) VALUES(?, ?, ?, ?, ?, ?, ?)",
            (iso(created_at), file_name, str(target_dir), size_bytes, sessions,
             iso(verified_at) if verified_at else None, error))
        return _get(conn, cursor.lastrowid or 0)


def mark_verified(storage: Storage, backup_id: int, at: datetime) -> None:
    """Note that backup ``backup_id`` was verified at ``at`` (and clear any error)."""
    with storage.connect() as conn:
        conn.execute("UPDATE backups SET verified_at = ?, error = NULL WHERE id = ?",
                     (iso(at), backup_id))


def mark_failed(storage: Storage, backup_id: int | None, error: str, *,
                target_dir: str | Path = "", file_name: str = "") -> BackupRecord:
    """Record why a backup failed: on its row, or (``backup_id`` None) as a new row.

    A new row is for an attempt that wrote no file (the target was missing, say),
    so the device page can still say that last night's backup failed and why.
    """
    with storage.connect() as conn:
        if backup_id is None:
            cursor = conn.execute(
                "INSERT INTO backups(created_at, file_name, target_dir, error) VALUES(?, ?, ?, ?)",
                (iso(storage.now()), file_name, str(target_dir), error))
            backup_id = cursor.lastrowid or 0
        else:
            conn.execute("UPDATE backups SET verified_at = NULL, error = ? WHERE id = ?",
                         (error, backup_id))
        return _get(conn, backup_id)


def recent(storage: Storage, limit: int = 20) -> list[BackupRecord]:
    """The latest ``limit`` attempts, newest first."""
    with storage.read() as conn:
        rows = conn.execute("SELECT * FROM backups ORDER BY created_at DESC, id DESC "
                            "LIMIT ?", (limit,)).fetchall()
    return [_record(row) for row in rows]


def newest_verified(storage: Storage) -> BackupRecord | None:
    """The newest backup that was written and verified, or None."""
    with storage.read() as conn:
        row = conn.execute("SELECT * FROM backups WHERE verified_at IS NOT NULL "
                           "AND error IS NULL ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
    return _record(row) if row else None


def forget(storage: Storage, backup_id: int) -> None:
    """Remove a row (its file was pruned or is gone)."""
    with storage.connect() as conn:
        conn.execute("DELETE FROM backups WHERE id = ?", (backup_id,))
