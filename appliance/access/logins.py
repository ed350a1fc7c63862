"""Web logins and the login guard, kept in SQLite (owns the ``web_logins`` table).

Both live in the database rather than in a worker's memory because gunicorn
runs several worker processes: a logout, a removed user or a lockout must
hold in all of them. The browser's cookie carries only a random token; the
database keeps its SHA-256, so a copied database cannot be replayed as a
cookie.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.access import failures
from appliance.access.failures import failure_delay
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
    """Why a login token is no longer valid (shown to the person)."""

    reason: str


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
            self.end(token)
            return ended
        if touch and now - seen >= TOUCH_EVERY:
            with self.storage.connect() as conn:
                conn.execute("UPDATE web_logins SET last_seen = ? WHERE token_hash = ?",
                             (iso(now), digest))
            seen = now
        return Login(row["username"], created, seen)

    def _expired(self, now: datetime, created: datetime, seen: datetime) -> Ended | None:
        if now - seen >= self.idle:
            minutes = int(self.idle.total_seconds() // 60)
            return Ended(f"You were logged out after {minutes} minutes without activity.")
        if now - created >= self.lifetime:
            hours = int(self.lifetime.total_seconds() // 3600)
            return Ended(f"Logins last at most {hours} hours; please log in again.")
        return None

    def end(self, token: str) -> None:
        """Log one browser out."""
        with self.storage.connect() as conn:
            conn.execute("DELETE FROM web_logins WHERE token_hash = ?", (_digest(token),))

    def end_all(self, username: str | None = None) -> int:
        """Log out everyone (or one user everywhere); how many logins ended."""
        with self.storage.connect() as conn:
            if username is None:
                return conn.execute("DELETE FROM web_logins").rowcount
            return conn.execute(
                "DELETE FROM web_logins WHERE username = ?", (username,)
            ).rowcount


@dataclass(frozen=True)
class Refusal:
    """A login attempt refused before the password was even checked."""

    message: str
    retry_after_s: int
    locked: bool


def address_key(address: str | None) -> str:
    """The unit a per-address limit counts: one IPv4 address or one IPv6 /64.

    A host on the LAN can pick any address in its IPv6 /64, so counting single
    IPv6 addresses would let it escape the limit.
    """
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginGuard:
    """Progressive delay and temporary lockout, per account and per address.

    After a few free failures each attempt must wait a little longer (the
    schedule of :func:`appliance.access.failures.failure_delay`, which the key store's
    unlock follows too: 1, 2, 4 … seconds, at most 30); after
    ``max_failures`` the account or address is locked for ``lockout_minutes``.
    The wait is enforced by refusing early attempts, not by sleeping, so an
    attacker cannot tie up the web workers.
    """

    def __init__(self, storage: Storage, now: Callable[[], datetime],
                 max_failures: int, lockout_minutes: int):
        self.storage = storage
        self.now = now
        self.max_failures = max_failures
        self.lockout = timedelta(minutes=lockout_minutes)

    @staticmethod
    def _keys(username: str | None, address: str | None) -> list[tuple[str, str]]:
        # username None: an attempt that names no account (a setup code guess).
        keys = [(failures.ADDRESS, address_key(address))]
        if username is not None:
            keys.insert(0, (failures.USER, failures.user_key(username)))
        return keys

    def check(self, username: str | None, address: str | None) -> Refusal | None:
        """A refusal if this account or address must wait or is locked out."""
        now = self.now()
        refusals = []
        with self.storage.connect() as conn:
            for scope, key in self._keys(username, address):
                count = failures.read(conn, scope, key)
                if count is not None:
                    refusal = self._refusal(conn, count, now)
                    if refusal:
                        refusals.append(refusal)
        # The lockout wins over a short wait, the longer wait over a shorter one.
        return max(refusals, key=lambda r: (r.locked, r.retry_after_s), default=None)

    def _refusal(self, conn, count: failures.Failures, now: datetime) -> Refusal | None:
        until = count.locked_until
        if until is not None:
            if now < until:
                minutes = max(1, -(-int((until - now).total_seconds()) // 60))
                return Refusal(
                    f"Too many failed logins. Try again in {minutes} minute"
                    f"{'s' if minutes != 1 else ''}, or ask a colleague to check the account.",
                    int((until - now).total_seconds()) + 1, True)
            # The lockout is over: start counting afresh.
            failures.clear(conn, count.scope, count.key)
            return None
        if count.last_failure is None:
            return None
        wait = failure_delay(count.failures)
        ready = count.last_failure + timedelta(seconds=wait)
        if now < ready:
            seconds = max(1, -(-int((ready - now).total_seconds() * 1000) // 1000))
            return Refusal(f"Please wait {seconds} second{'s' if seconds != 1 else ''} "
                           "before trying again.", seconds, False)
        return None

    def failed(self, username: str | None, address: str | None) -> bool:
        """Count a failure for the account and the address; True if that locked either."""
        now = self.now()
        locked = False
        with self.storage.connect() as conn:
            for scope, key in self._keys(username, address):
                if failures.record(conn, scope, key, now) >= self.max_failures:
                    failures.lock(conn, scope, key, now + self.lockout)
                    locked = True
        return locked

    def succeeded(self, username: str | None, address: str | None) -> None:
        """Clear the counters after a correct password."""
        with self.storage.connect() as conn:
            for scope, key in self._keys(username, address):
                failures.clear(conn, scope, key)
