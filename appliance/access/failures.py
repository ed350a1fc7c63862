"""Wrong passphrases: one table, one rule, one counter per attempt, for every passphrase form.

Owns the ``login_failures`` table. Every form that checks a passphrase or a
setup code (the web login, changing a passphrase, ``holdnote keys unlock``,
the setup page) asks :class:`Guard` first. Each attempt counts in exactly one
row, its :class:`Counter`:

- a known account tried from a browser where it has logged in before (the web
  page recognises it by a signed cookie) or from the device's console: that
  account-and-browser row;
- a known account tried from anywhere else: the account's row;
- an unknown user name, or a setup code: the client address's row.

So guessing one account from a new computer locks only the new computers out
of that account: the clinician keeps logging in from their own computer, and a
colleague at the guesser's computer is not affected at all.

The rule: a few free failures, then each attempt waits twice as long as the one
before (1, 2, 4 … seconds, at most 30), and ``max_failures`` failures lock the
row for ``lockout_minutes``. Waiting means refusing early attempts (429), never
sleeping, so a guesser cannot tie up the web workers. The check and the count
are one write transaction, and the failure is counted *before* the passphrase is
checked (forgiven on success), so concurrent guesses cannot slip past the limit.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from appliance.errors import TooManyAttemptsError
from appliance.store.db import Storage

USER = "user"
ADDRESS = "address"
CONSOLE = "console"
# Failures before each attempt starts to wait, and the longest wait.
FREE_FAILURES = 2
MAX_DELAY_S = 30.0
# Separates an account from one of its browsers in a row's key (user names hold no tab).
_DEVICE_SEP = "\t"


def failure_delay(failures: int) -> float:
    """Seconds to wait before an attempt after ``failures`` consecutive failures."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_S, 2.0 ** (failures - FREE_FAILURES - 1))


def user_key(username: str) -> str:
    """The per-account key: "Dr.Chen " and "dr.chen" are one account to count."""
    return username.strip().casefold()


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


@dataclass(frozen=True)
class Counter:
    """The row one attempt counts in (see the module docstring)."""

    scope: str
    key: str

    @property
    def trusted(self) -> bool:
        """True for an account tried from a browser (or console) it has used before."""
        return self.scope == USER and _DEVICE_SEP in self.key


def counter(username: str | None, *, known: bool, address: str | None = None,
            device: str | None = None) -> Counter:
    """Where an attempt on ``username`` from ``address`` (and ``device``) counts.

    ``device`` is an id the caller vouches for: a browser where ``username``
    logged in before, or :data:`CONSOLE`. ``None`` for a setup code.
    """
    if username is None or not known:
        return Counter(ADDRESS, address_key(address))
    if device:
        return Counter(USER, f"{user_key(username)}{_DEVICE_SEP}{device}")
    return Counter(USER, user_key(username))


@dataclass(frozen=True)
class Failures:
    """The consecutive failures counted in one row."""

    scope: str
    key: str
    failures: int
    last_failure: datetime | None
    locked_until: datetime | None


def _stamp(moment: datetime) -> str:
    # Microseconds: a one-second wait must not pass after 0.3 s because the
    # failure was stored rounded down to its second.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


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
        (scope, key, _stamp(moment)),
    )
    return conn.execute(
        "SELECT failures FROM login_failures WHERE scope = ? AND key = ?", (scope, key)
    ).fetchone()[0]


def lock(conn: sqlite3.Connection, scope: str, key: str, until: datetime) -> None:
    """Refuse every attempt for ``(scope, key)`` until ``until``."""
    conn.execute(
        "UPDATE login_failures SET locked_until = ? WHERE scope = ? AND key = ?",
        (_stamp(until), scope, key),
    )


def clear(conn: sqlite3.Connection, scope: str, key: str) -> None:
    """Forget the failures of ``(scope, key)``; for an account, of all its browsers too."""
    conn.execute("DELETE FROM login_failures WHERE scope = ? AND key = ?", (scope, key))
    if scope == USER and _DEVICE_SEP not in key:
        conn.execute("DELETE FROM login_failures WHERE scope = ? AND substr(key, 1, ?) = ?",
                     (USER, len(key) + 1, key + _DEVICE_SEP))


@dataclass(frozen=True)
class Ticket:
    """Permission to check one passphrase; the failure is already counted."""

    counter: Counter
    locks: bool


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _lockout_message(row: Counter, minutes: int) -> str:
    wait = f"Try again in {_plural(minutes, 'minute')}"
    if row.scope == ADDRESS:
        return f"Too many failed attempts from this computer. {wait}."
    if row.trusted:
        return f"Too many wrong passphrases for this account here. {wait}."
    return (f"Too many wrong passphrases for this account from computers it has not "
            f"logged in from before. {wait}, or log in from a computer you have used "
            "before, or ask a colleague to check the account.")


class Guard:
    """The one rule for every passphrase form, on the shared ``login_failures`` table."""

    def __init__(self, storage: Storage, now: Callable[[], datetime],
                 max_failures: int = 5, lockout_minutes: int = 15):
        self.storage = storage
        self.now = now
        self.max_failures = max_failures
        self.lockout = timedelta(minutes=lockout_minutes)

    def begin(self, row: Counter) -> Ticket:
        """Count a failure in ``row`` now, or raise :class:`TooManyAttemptsError`.

        Check and count are one write transaction: of any number of concurrent
        attempts, only as many are let through as the rule allows.
        """
        now = self.now()
        with self.storage.connect() as conn:
            count = read(conn, row.scope, row.key)
            if count is not None and count.locked_until is not None and now >= count.locked_until:
                clear(conn, row.scope, row.key)  # the lockout is over: count afresh
                count = None
            if count is not None:
                self._refuse(row, count, now)
            failures = record(conn, row.scope, row.key, now)
            locks = failures >= self.max_failures
            if locks:
                lock(conn, row.scope, row.key, now + self.lockout)
        return Ticket(row, locks)

    def _refuse(self, row: Counter, count: Failures, now: datetime) -> None:
        if count.locked_until is not None:
            seconds = (count.locked_until - now).total_seconds()
            raise TooManyAttemptsError(_lockout_message(row, max(1, -(-int(seconds) // 60))),
                                       int(seconds) + 1, locked=True)
        if count.last_failure is None:
            return
        ready = count.last_failure + timedelta(seconds=failure_delay(count.failures))
        if now < ready:
            seconds = max(1, -(-(ready - now) // timedelta(seconds=1)))
            raise TooManyAttemptsError(
                f"Please wait {_plural(seconds, 'second')} before trying again.", seconds)

    def forgive(self, ticket: Ticket) -> None:
        """The passphrase was right: forget the failures of the ticket's row."""
        with self.storage.connect() as conn:
            clear(conn, ticket.counter.scope, ticket.counter.key)
