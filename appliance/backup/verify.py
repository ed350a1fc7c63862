"""Checking a backup file: its structure with no key, everything with one.

Without a key only the structure can be judged (an age v1 header with the
practice recipient and the key slots, a size a whole file can have); the
header MAC and the content need the practice identity, that is an unlocked
device. With it every chunk is decrypted and authenticated, the manifest must
match the members, and the database snapshot must open, pass SQLite's
``integrity_check`` and hold an audit chain that verifies. Restore runs the
same snapshot check on what it extracted.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import RECIPIENT_SETTING, user_count
from appliance.backup.reader import (
    DB_MEMBER,
    MANIFEST,
    Manifest,
    copy_member,
    drain,
    open_backup,
    read_header,
)
from appliance.config import Config
from appliance.errors import BackupFileError
from appliance.store.db import DB_NAME, MIGRATIONS, Storage

STRUCTURE_ONLY = ("structure only (header, key slots, size): a full check decrypts the "
                  "backup and needs the device unlocked")


@dataclass(frozen=True)
class SnapshotFacts:
    """What the database inside a backup holds, once it passed its checks."""

    sessions: int
    users: int
    audit_entries: int


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_backup`; a failed check raises instead.

    ``full`` is False for a structure-only check (no key), and ``note`` then
    says what was left unchecked.
    """

    file_name: str
    size_bytes: int
    full: bool
    created_at: str | None = None
    sessions: int | None = None
    recordings: int | None = None
    audit_entries: int | None = None
    note: str = ""
    version: int = 1

    def to_json(self) -> dict:
        """The report as JSON data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> VerifyReport:
        """The report from :meth:`to_json`'s data."""
        return cls(**data)


def verify_backup(cfg: Config, path: str | Path,
                  identity: age.X25519Identity | None = None) -> VerifyReport:
    """Check backup ``path``: structure, or with ``identity`` everything.

    :class:`BackupFileError` (one sentence) for a file that is cut short,
    altered, another practice's or not a backup.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupFileError(f"{path}: no such backup file")
    header = read_header(path)
    _check_practice(cfg, path.name, header.slots.recipient)
    size = path.stat().st_size
    if identity is None:
        return VerifyReport(path.name, size, full=False, note=STRUCTURE_ONLY)
    scratch = cfg.paths.data_dir if cfg.paths.data_dir.is_dir() else None
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".verify-") as tmp:
        manifest, facts = _read_all(path, identity, Path(tmp))
    return VerifyReport(path.name, size, full=True, created_at=manifest.created_at,
                        sessions=facts.sessions, recordings=manifest.recordings,
                        audit_entries=facts.audit_entries)


def _check_practice(cfg: Config, name: str, recipient: str) -> None:
    # On a device with practice keys, a backup of another practice is no backup of this one.
    if not (cfg.paths.data_dir / DB_NAME).is_file():
        return
    ours = Storage(cfg.paths.data_dir).get_setting(RECIPIENT_SETTING)
    if ours is not None and ours != recipient:
        raise BackupFileError(f"{name}: it was encrypted to another practice ({recipient}), "
                              f"not this device's ({ours})")


def _read_all(path: Path, identity: age.X25519Identity, scratch: Path) -> tuple[Manifest, SnapshotFacts]:
    names: list[str] = []
    with open_backup(path, identity) as (manifest, members):
        for member in members:
            names.append(member.name)
            if member.name == DB_MEMBER:
                copy_member(member, scratch / DB_NAME)
            else:
                drain(member)
    check_members(manifest, names, path.name)
    facts = check_snapshot(scratch, path.name)
    check_counts(manifest, facts, path.name)
    return manifest, facts


def check_members(manifest: Manifest, names: list[str], name: str) -> None:
    """The members found must be those the manifest lists, with the database among them."""
    found, listed = set(names) - {MANIFEST}, set(manifest.members) - {MANIFEST}
    if len(names) != len(set(names)):
        raise BackupFileError(f"{name}: a member appears twice; the backup was altered")
    if found != listed:
        missing, extra = sorted(listed - found), sorted(found - listed)
        raise BackupFileError(f"{name}: its content does not match its manifest (missing: "
                              f"{', '.join(missing) or '-'}; not listed: {', '.join(extra) or '-'})")
    if DB_MEMBER not in found:
        raise BackupFileError(f"{name}: it holds no database; it is not a Holdnote backup")


def check_counts(manifest: Manifest, facts: SnapshotFacts, name: str) -> None:
    """The database must hold as many sessions as the manifest says."""
    if facts.sessions != manifest.sessions:
        raise BackupFileError(f"{name}: its database holds {facts.sessions} sessions, its "
                              f"manifest says {manifest.sessions}; the backup is inconsistent")


def check_snapshot(data_dir: Path, name: str) -> SnapshotFacts:
    """Open the database snapshot in ``data_dir``: integrity, schema version, audit chain.

    The schema is brought up to date on the way (a restore wants that anyway;
    verify works on a throw-away copy).
    """
    db_path = data_dir / DB_NAME
    version = _integrity(db_path, name)
    if version > len(MIGRATIONS):
        raise BackupFileError(f"{name}: it was made by a newer Holdnote (database schema "
                              f"{version}, this one knows {len(MIGRATIONS)}); update Holdnote first")
    storage = Storage(data_dir)
    verdict = AuditLog(storage).verify()
    if not verdict.ok:
        raise BackupFileError(f"{name}: the audit log inside does not verify at entry "
                              f"{verdict.first_bad_seq}: {verdict.reason}")
    return SnapshotFacts(storage.count_sessions(), user_count(storage), verdict.entries)


def _integrity(db_path: Path, name: str) -> int:
    try:
        conn = sqlite3.connect(db_path)  # a scratch copy: it may be written (WAL files)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise BackupFileError(f"{name}: its database cannot be opened ({error})") from None
    if result != ["ok"]:
        raise BackupFileError(f"{name}: its database is damaged ({'; '.join(result[:3])})")
    return int(version)
