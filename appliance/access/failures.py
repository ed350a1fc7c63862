"""The failed-login counter: one table and one delay rule for every passphrase form.

Owns the ``login_failures`` table. Failures are counted per account
(scope ``user``, the case-folded user name) and per client address (scope
``address``). The web login (:class:`appliance.access.logins.LoginGuard`) and the
key store's unlock (:meth:`appliance.access.keys.KeyStore.open_slot`) count into the
same per-account row, so a guesser cannot spread attempts over both forms.
Functions take an open connection, so a caller's check and count happen in
one transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from appliance.store.db import iso

USER = "user"
ADDRESS = "address"
# Failures before each attempt starts to wait, and the longest wait.
FREE_FAILURES = 2
MAX_DELAY_S = 30.0


def failure_delay(failures: int) -> float:
    """Seconds to wait before an attempt after ``failures`` consecutive failures."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_S, 2.0 ** (failures - FREE_FAILURES - 1))


def user_key(username: str) -> str:
    """The per-account key: "Dr.Chen " and "dr.chen" are one account to count."""
    return username.strip().casefold()


@dataclass(frozen=True)
class Failures:
    """The consecutive failures of one account or address."""

    scope: str
    key: str
    failures: int
    last_failure: datetime | None
    locked_until: datetime | None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def read(conn: sqlite3.Connection, scope: str, key: str) -> Failures | None:
    """The count for ``(scope, key)``, or ``None`` if there were no failures."""
    row = conn.execute(
        "SELECT * FROM login_failures WHERE scope = ? AND key = ?", (scope, key)
    ).fetchone()
    if row is None:
        return None
    return Failures(row["scope"], row["key"], row["failures"],
                    _when(row["last_failure"]), _when(row["locked_until"]))


def record(conn: sqlite3.Connection, scope: str, key: str, moment: datetime) -> int:
    """Count one failure at ``moment``; the new count."""
    conn.execute(
        "INSERT INTO login_failures(scope, key, failures, last_failure) "
        "VALUES(?, ?, 1, ?) ON CONFLICT(scope, key) DO UPDATE SET "
        "failures = failures + 1, last_failure = excluded.last_failure",
        (scope, key, iso(moment)),
    )
    return conn.execute(
        "SELECT failures FROM login_failures WHERE scope = ? AND key = ?", (scope, key)
    ).fetchone()[0]


def lock(conn: sqlite3.Connection, scope: str, key: str, until: datetime) -> None:
    """Refuse every attempt for ``(scope, key)`` until ``until``."""
    conn.execute(
        "UPDATE login_failures SET locked_until = ? WHERE scope = ? AND key = ?",
        (iso(until), scope, key),
    )


def clear(conn: sqlite3.Connection, scope: str, key: str) -> None:
    """Forget the failures of ``(scope, key)`` (a success, or a lockout that ended)."""
    conn.execute("DELETE FROM login_failures WHERE scope = ? AND key = ?", (scope, key))
