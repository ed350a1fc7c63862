"""Web logins and the login guard, kept in SQLite (owns the ``web_logins`` table).

Both live in the database rather than in a worker's memory because gunicorn
runs several worker processes: a logout, a removed user or a lockout must
hold in all of them. The browser's cookie carries only a random token; the
database keeps its SHA-256, so a copied database cannot be replayed as a
cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.access.keys import record_login
from appliance.store.db import Storage, iso

# last_seen is written at most this often, so a busy page does not turn
# every request into a database write.
TOUCH_EVERY = timedelta(seconds=20)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Login:
    """A valid login: who, since when, last activity."""

    username: str
    created_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Ended:
    """Why a login token is no longer valid (``reason`` is shown to the person).

    ``username`` and ``cause`` ("idle" or "expired") are set only for the one
    request that ended the login, so the logoff is audited exactly once.
    """

    reason: str
    username: str | None = None
    cause: str | None = None


class Logins:
    """Create, check and end web logins with idle and absolute time limits."""

    def __init__(self, storage: Storage, now: Callable[[], datetime],
                 idle_minutes: int, session_hours: int):
        self.storage = storage
        self.now = now
        self.idle = timedelta(minutes=idle_minutes)
        self.lifetime = timedelta(hours=session_hours)

    def create(self, username: str, source: str | None) -> str:
        """Start a login for an existing user; the token for the cookie."""
        token = secrets.token_urlsafe(32)
        moment = iso(self.now())
        with self.storage.connect() as conn:
            user_id = record_login(conn, username, moment)
            if user_id is None:
                raise LookupError(f"no user named {username!r}")
            conn.execute(
                "INSERT INTO web_logins(token_hash, user_id, username, created_at, last_seen, "
                "source) VALUES(?, ?, ?, ?, ?, ?)",
                (_digest(token), user_id, username, moment, moment, source),
            )
        return token

    def check(self, token: str, touch: bool = True) -> Login | Ended:
        """The login behind ``token``, or why it ended (idle, too old, logged out).

        ``touch`` records activity; background polling passes False so a page
        left open does not keep a login alive forever. Most requests only
        read; the write lock is taken only to record activity or end a login.
        """
        now = self.now()
        digest = _digest(token)
        with self.storage.read() as conn:
            row = conn.execute(
                "SELECT * FROM web_logins WHERE token_hash = ?", (digest,)).fetchone()
        if row is None:
            return Ended("You are logged out.")
        created = datetime.fromisoformat(row["created_at"])
        seen = datetime.fromisoformat(row["last_seen"])
        ended = self._expired(now, created, seen)
        if ended:
            if self.end(token):
                return Ended(ended.reason, row["username"], ended.cause)
            return Ended(ended.reason)
        if touch and now - seen >= TOUCH_EVERY:
            with self.storage.connect() as conn:
                conn.execute("UPDATE web_logins SET last_seen = ? WHERE token_hash = ?",
                             (iso(now), digest))
            seen = now
        return Login(row["username"], created, seen)

    def _expired(self, now: datetime, created: datetime, seen: datetime) -> Ended | None:
        if now - seen >= self.idle:
            minutes = int(self.idle.total_seconds() // 60)
            return Ended(f"You were logged out after {minutes} minutes without activity.",
                         cause="idle")
        if now - created >= self.lifetime:
            hours = int(self.lifetime.total_seconds() // 3600)
            return Ended(f"Logins last at most {hours} hours; please log in again.",
                         cause="expired")
        return None

    def end(self, token: str) -> bool:
        """Log one browser out; False if it was logged out already."""
        with self.storage.connect() as conn:
            return conn.execute("DELETE FROM web_logins WHERE token_hash = ?",
                                (_digest(token),)).rowcount > 0

    def end_all(self, username: str | None = None) -> int:
        """Log out everyone (or one user everywhere); how many logins ended."""
        with self.storage.connect() as conn:
            if username is None:
                return conn.execute("DELETE FROM web_logins").rowcount
            return conn.execute(
                "DELETE FROM web_logins WHERE username = ?", (username,)
            ).rowcount
