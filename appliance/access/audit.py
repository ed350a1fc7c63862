"""The append-only, hash-chained audit log.

Each entry stores the SHA-256 of the entry before it and its own hash over
its fields and that link, so editing, removing or reordering any entry
breaks the chain from that point on. The hash of the newest entry and the
entry count are also kept in the settings table, so cutting entries off the
end is detected too. This detects tampering; it cannot prevent someone with
the SD card from rewriting the whole chain consistently, which is why the
entries hold no client text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from appliance.errors import AuditError
from appliance.store.db import Storage, iso, put_setting

GENESIS = "0" * 64
HEAD_SETTING = "audit_head"


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


def entry_hash(prev_hash: str, seq: int, ts: str, actor: str, action: str,
               session_id: int | None, source: str | None, detail: str | None) -> str:
    """The hash that chains an entry to the one before it."""
    body = json.dumps(
        [prev_hash, seq, ts, actor, action, session_id, source, detail],
        separators=(",", ":"), ensure_ascii=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Appends to and verifies the audit table in :class:`Storage`."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def append(self, actor: str, action: str, *, session_id: int | None = None,
               source: str | None = None, detail: str | None = None) -> Entry:
        """Add an entry; the read of the previous hash and the insert are one transaction."""
        ts = iso(self.storage.now())
        with self.storage.connect() as conn:
            last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
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
        try:
            with self.storage.connect() as conn:
                return [Entry(**dict(row)) for row in conn.execute(sql, args)]
        except Exception as error:  # noqa: BLE001 - a damaged table must be reported, not crash the page
            raise AuditError(f"cannot read the audit log: {error}") from None

    def verify(self) -> Verdict:
        """Walk the chain; report the first entry that was altered, removed or reordered."""
        prev, expected_seq, count = GENESIS, 1, 0
        for entry in self.entries(newest_first=False):
            count += 1
            problem = self._check(entry, prev, expected_seq)
            if problem:
                return Verdict(False, count, min(entry.seq, expected_seq), problem)
            prev, expected_seq = entry.hash, entry.seq + 1
        return self._check_head(count, expected_seq - 1, prev)

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

    def _check_head(self, count: int, last_seq: int, last_hash: str) -> Verdict:
        head = self.storage.get_setting(HEAD_SETTING)
        if head is None:
            if count:
                return Verdict(False, count, 1, "the record of the newest entry is missing")
            return Verdict(True, 0)
        head_seq, head_hash = int(head.split(":")[0]), head.split(":")[1]
        if head_seq != last_seq or head_hash != last_hash:
            return Verdict(False, count, last_seq + 1,
                           f"entries after {last_seq} were removed (log ended at {head_seq})")
        return Verdict(True, count)
