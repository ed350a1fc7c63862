"""The append-only, hash-chained audit log.

Each entry stores the SHA-256 of the entry before it and its own hash over
its fields and that link, so editing, removing or reordering any entry
breaks the chain from that point on. The hash of the newest entry and the
entry count are also kept in the settings table (``audit_head``), so cutting
entries off the end is detected too.

Every append first checks that the newest entry is the one ``audit_head``
records. If not (entries cut off the end, the head changed or unreadable, the
whole log emptied), it writes an ``audit.break`` entry saying what it found,
chained like any other, before its own entry; :meth:`AuditLog.verify` reports
such an entry for ever after, so the next ordinary login cannot hide a cut.
An emptied log is told apart from a new device by ``audit_in_use``, set with
the first entry ever written: only a device that never logged anything has
neither entries nor that setting.

This detects tampering; it cannot prevent someone with the SD card from
rewriting the whole chain and both settings consistently, which is why the
entries hold no client text.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from appliance.access.keys import user_count
from appliance.errors import AuditError
from appliance.store.db import Storage, iso, put_setting, read_setting

GENESIS = "0" * 64
HEAD_SETTING = "audit_head"
IN_USE_SETTING = "audit_in_use"
BREAK = "audit.break"
SYSTEM = "holdnote"
_HEAD = re.compile(r"^([1-9][0-9]{0,17}):([0-9a-f]{64})$")


@dataclass(frozen=True)
class Entry:
    """One audit record."""

    seq: int
    ts: str
    actor: str
    action: str
    session_id: int | None
    source: str | None
    detail: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verdict:
    """The result of :meth:`AuditLog.verify`."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Filter:
    """Which entries the audit page shows: all of them by default."""

    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def args(self) -> list[object]:
        """The arguments of the search: each condition is off when its value is None."""
        since = iso(self.since) if self.since else None
        until = iso(self.until) if self.until else None
        return [self.actor or None, self.actor, self.action or None, self.action,
                since, since, until, until]


# One fixed statement for every filter, so no SQL is ever built from input.
_SEARCH = ("SELECT * FROM audit WHERE (? IS NULL OR actor = ?) AND (? IS NULL OR action = ?) "
           "AND (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?) "
           "ORDER BY seq DESC LIMIT ? OFFSET ?")
_COUNT = ("SELECT COUNT(*) FROM audit WHERE (? IS NULL OR actor = ?) AND (? IS NULL OR action = ?) "
          "AND (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?)")


def entry_hash(prev_hash: str, seq: int, ts: str, actor: str, action: str,
               session_id: int | None, source: str | None, detail: str | None) -> str:
    """The hash that chains an entry to the one before it."""
    body = json.dumps(
        [prev_hash, seq, ts, actor, action, session_id, source, detail],
        separators=(",", ":"), ensure_ascii=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def head_problem(last: tuple[int, str] | None, head: str | None, in_use: str | None) -> str:
    """What is wrong with the recorded head, given the newest entry ``(seq, hash)``; "" if fine."""
    if head is None:
        if last is not None:
            return "the record of the newest entry (setting audit_head) is missing"
        return f"every entry was removed (the log was in use since {in_use})" if in_use else ""
    match = _HEAD.match(head)
    if match is None:
        return f"the record of the newest entry (setting audit_head) is unreadable: {head[:80]!r}"
    head_seq, head_hash = int(match.group(1)), match.group(2)
    if last is None:
        return f"every entry was removed (the log had reached entry {head_seq})"
    if head_seq > last[0]:
        return f"entries {last[0] + 1} to {head_seq} were removed from the end"
    if (head_seq, head_hash) != last:
        return f"the newest entry ({last[0]}) is not the one recorded (entry {head_seq})"
    return ""


class AuditLog:
    """Appends to and verifies the audit table in :class:`Storage`."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def append(self, actor: str, action: str, *, session_id: int | None = None,
               source: str | None = None, detail: str | None = None) -> Entry:
        """Add an entry; the head check, the read of the previous hash and the insert are one transaction.

        A head that does not match the newest entry is recorded first, in an
        ``audit.break`` entry, so the damage stays visible after this append.
        """
        ts = iso(self.storage.now())
        with self.storage.connect() as conn:
            last, in_use = self._last(conn), read_setting(conn, IN_USE_SETTING)
            problem = head_problem(last, read_setting(conn, HEAD_SETTING), in_use)
            if problem:
                found = self._insert(conn, last, ts, SYSTEM, BREAK, None, None,
                                     f"found when writing the next entry: {problem}")
                last = (found.seq, found.hash)
            entry = self._insert(conn, last, ts, actor, action, session_id, source, detail)
            if in_use is None:
                put_setting(conn, IN_USE_SETTING, ts)
        return entry

    @staticmethod
    def _last(conn: sqlite3.Connection) -> tuple[int, str] | None:
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row["seq"], row["hash"]) if row else None

    @staticmethod
    def _insert(conn: sqlite3.Connection, last: tuple[int, str] | None, ts: str, actor: str,
                action: str, session_id: int | None, source: str | None,
                detail: str | None) -> Entry:
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        digest = entry_hash(prev, seq, ts, actor, action, session_id, source, detail)
        conn.execute(
            "INSERT INTO audit(seq, ts, actor, action, session_id, source, detail, "
            "prev_hash, hash) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, actor, action, session_id, source, detail, prev, digest),
        )
        put_setting(conn, HEAD_SETTING, f"{seq}:{digest}")
        return Entry(seq, ts, actor, action, session_id, source, detail, prev, digest)

    def entries(self, limit: int | None = None, newest_first: bool = True,
                since: datetime | None = None) -> list[Entry]:
        """Entries for display (newest first by default)."""
        sql = "SELECT * FROM audit"
        args: list[object] = []
        if since:
            sql += " WHERE ts >= ?"
            args.append(iso(since))
        sql += " ORDER BY seq " + ("DESC" if newest_first else "ASC")
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return self._rows(sql, args)

    def search(self, where: Filter, offset: int = 0, limit: int | None = None) -> list[Entry]:
        """The entries ``where`` selects, newest first; ``limit`` None for all of them."""
        return self._rows(_SEARCH, [*where.args(), -1 if limit is None else limit, offset])

    def count(self, where: Filter) -> int:
        """How many entries ``where`` selects."""
        with self.storage.read() as conn:
            return conn.execute(_COUNT, where.args()).fetchone()[0]

    def choices(self) -> tuple[list[str], list[str]]:
        """Every actor and every action in the log, for the page's filters."""
        with self.storage.read() as conn:
            actors = [r[0] for r in conn.execute("SELECT DISTINCT actor FROM audit ORDER BY 1")]
            actions = [r[0] for r in conn.execute("SELECT DISTINCT action FROM audit ORDER BY 1")]
        return actors, actions

    def _rows(self, sql: str, args: list[object]) -> list[Entry]:
        try:
            with self.storage.read() as conn:
                return [Entry(**dict(row)) for row in conn.execute(sql, args)]
        except Exception as error:  # noqa: BLE001 - a damaged table must be reported, not crash the page
            raise AuditError(f"cannot read the audit log: {error}") from None

    def last_of(self, session_id: int, action: str) -> Entry | None:
        """The newest entry with ``action`` for a session (when was it last exported?)."""
        with self.storage.read() as conn:
            row = conn.execute("SELECT * FROM audit WHERE session_id = ? AND action = ? "
                               "ORDER BY seq DESC LIMIT 1", (session_id, action)).fetchone()
        return Entry(**dict(row)) if row else None

    def verify(self) -> Verdict:
        """Walk the chain; report the first entry that was altered, removed or reordered.

        A recorded break (an ``audit.break`` entry) is reported too, however
        long ago it was found, as is a log emptied behind the device's back.
        """
        prev, expected_seq, count, broken = GENESIS, 1, 0, None
        for entry in self.entries(newest_first=False):
            count += 1
            problem = self._check(entry, prev, expected_seq)
            if problem:
                return Verdict(False, count, min(entry.seq, expected_seq), problem)
            if entry.action == BREAK and broken is None:
                broken = entry
            prev, expected_seq = entry.hash, entry.seq + 1
        last = (expected_seq - 1, prev) if count else None
        return self._check_head(count, last) or self._check_break(count, broken) or (
            self._check_empty(count) or Verdict(True, count))

    @staticmethod
    def _check(entry: Entry, prev: str, expected_seq: int) -> str:
        if entry.seq != expected_seq:
            return f"entry {expected_seq} is missing (next is {entry.seq})"
        if entry.prev_hash != prev:
            return f"entry {entry.seq} does not follow entry {entry.seq - 1} (removed or reordered)"
        digest = entry_hash(prev, entry.seq, entry.ts, entry.actor, entry.action,
                            entry.session_id, entry.source, entry.detail)
        if digest != entry.hash:
            return f"entry {entry.seq} was altered"
        return ""

    def _check_head(self, count: int, last: tuple[int, str] | None) -> Verdict | None:
        with self.storage.read() as conn:
            problem = head_problem(last, read_setting(conn, HEAD_SETTING),
                                   read_setting(conn, IN_USE_SETTING))
        return Verdict(False, count, (last[0] + 1) if last else 1, problem) if problem else None

    @staticmethod
    def _check_break(count: int, broken: Entry | None) -> Verdict | None:
        if broken is None:
            return None
        return Verdict(False, count, broken.seq,
                       f"entry {broken.seq} ({broken.ts}) records damage: {broken.detail}")

    def _check_empty(self, count: int) -> Verdict | None:
        # Setup writes entries as it creates the first account, so accounts
        # beside an empty log mean the entries and both settings were removed.
        if count == 0 and user_count(self.storage) > 0:
            return Verdict(False, 0, 1, "the log is empty although accounts exist: "
                                        "its entries were removed")
        return None
