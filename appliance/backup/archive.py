"""Writing a backup: one age file holding a streamed tar of everything a new device needs.

``make_backup`` checks the target, snapshots the database with SQLite's online
backup API (the services keep running), and streams ``MANIFEST.json``, the
snapshot, the configuration, the TLS certificate and the recordings through
:class:`age.StreamWriter` into ``.<name>.partial`` on the target: fsync, rename,
directory fsync, so a final name only ever holds a whole backup. The new file
is verified (fully when the device is unlocked, else its structure), and only
then are generations beyond ``backup.keep`` removed. Memory stays flat: files
are copied through in blocks, never read whole.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, BinaryIO, cast

from appliance import age
from appliance import config as config_mod
from appliance.access.audit import SYSTEM, AuditLog
from appliance.access.keys import KeyStore
from appliance.backup import reader, slots
from appliance.backup.target import check_target, estimate_size, target_dir
from appliance.backup.verify import verify_backup
from appliance.config import Config
from appliance.errors import BackupTargetError, DeviceLockedError, HoldnoteError
from appliance.fsutil import fsync_dir
from appliance.store import backups
from appliance.store.backups import BackupRecord
from appliance.store.db import DB_NAME, Storage

PREFIX = "holdnote-backup-"
NAME = re.compile(r"^holdnote-backup-[0-9]{8}T[0-9]{6}Z\.age$")
PARTIAL = re.compile(r"^\.holdnote-backup-[0-9]{8}T[0-9]{6}Z\.age\.partial$")
LOCK_NAME = ".backup.lock"
SCRATCH = ".backup-"  # the snapshot's temporary directory in data_dir


def backup_name(moment: datetime) -> str:
    """The file name of a backup made at ``moment``: UTC, so names sort by time."""
    return f"{PREFIX}{moment.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.age"


@dataclass(frozen=True)
class _Source:
    """One file to put in the archive, opened before the manifest is written."""

    member: str
    handle: BinaryIO
    size: int


def make_backup(cfg: Config, storage: Storage, keys: KeyStore, *,
                now: datetime | None = None, config_path: Path | None = None) -> BackupRecord:
    """Write, verify and record a new backup in ``backup.target_dir``; prune old ones.

    The device need not be unlocked: the backup is encrypted to the practice
    recipient (unlocked, the new file is verified in full, else its structure).
    ``config_path`` is the configuration file to pack (default: the one
    ``holdnote`` reads without ``--config``).
    Any failure raises one :class:`HoldnoteError` sentence, leaves no partial
    file and the previous backups as they were, and is recorded and audit-logged.
    """
    target_dir(cfg)  # backups off is no failed attempt: nothing to record
    moment = now or storage.now()
    record: BackupRecord | None = None
    try:
        with _exclusive(storage):
            identity = _identity(keys)
            record = _write_new(cfg, storage, keys, moment, identity,
                                config_path or config_mod.resolve_path())
            record = _finish(cfg, storage, record, identity)
    except (HoldnoteError, OSError, sqlite3.Error) as error:
        message = (f"the database snapshot failed ({error}); run the backup again later"
                   if isinstance(error, sqlite3.Error) else _message(error))
        backups.mark_failed(storage, record.id if record else None, message,
                            target_dir=cfg.backup.target_dir or "")
        AuditLog(storage).append(SYSTEM, "backup.failed", detail=message[:300])
        raise
    AuditLog(storage).append(SYSTEM, "backup.done",
                             detail=f"{record.file_name} {record.size_bytes} bytes")
    return record


def _message(error: Exception) -> str:
    if isinstance(error, HoldnoteError) or not isinstance(error, OSError):
        return str(error)
    where = f" ({error.filename})" if error.filename else ""
    return f"the backup could not be written: {error.strerror or error}{where}"


def _write_new(cfg: Config, storage: Storage, keys: KeyStore, moment: datetime,
               identity: age.X25519Identity | None, config_path: Path) -> BackupRecord:
    """Check the target and write the new file under its final name; its row."""
    _remove_stale_scratch(storage.data_dir)
    recordings = _recording_files(storage)
    target = check_target(cfg, storage, estimate_size(storage, recordings))
    _remove_stale_partials(target)
    name = backup_name(moment)
    if (target / name).exists():
        raise BackupTargetError(f"a backup named {name} already exists in {target}; "
                                "wait a second and run the backup again")
    recipients = [keys.recipient(), *_extra(cfg),
                  slots.slots_stanza(storage, identity=identity,
                                     backup_recipient=cfg.backup.recipient)]
    try:
        sessions = _write(cfg, storage, target / name, recipients, moment, recordings,
                          config_path)
    except OSError as error:
        if error.filename is not None and Path(error.filename).parent != target:
            raise  # a file on the device (a snapshot in data_dir), not the target
        raise _target_failed(target, error) from None
    return backups.add(storage, created_at=moment, file_name=name, target_dir=target,
                       size_bytes=(target / name).stat().st_size, sessions=sessions)


def _target_failed(target: Path, error: OSError) -> BackupTargetError:
    """The sentence for a write to the target that failed part way (nothing was kept)."""
    if error.errno == errno.ENOSPC:
        return BackupTargetError(f"backup target {target} filled up during the backup; "
                                 "nothing was kept: free space there, lower backup.keep or "
                                 "use a larger drive")
    if error.errno == errno.EROFS:
        return BackupTargetError(f"backup target {target} became read-only during the backup "
                                 "(a failing drive?); check the drive and remount it writable")
    return BackupTargetError(f"writing to backup target {target} failed ({error.strerror}); "
                             "nothing was kept: check the drive or share and run it again")


def _finish(cfg: Config, storage: Storage, record: BackupRecord,
            identity: age.X25519Identity | None) -> BackupRecord:
    """Verify the new file, then (and only then) prune old generations."""
    try:
        report = verify_backup(cfg, record.path, identity)
    except BaseException:
        # A backup that fails its check is no generation: it must not push a good one out.
        record.path.unlink(missing_ok=True)
        raise
    backups.mark_verified(storage, record.id, storage.now())
    AuditLog(storage).append(SYSTEM, "backup.verified", detail=f"{record.file_name} "
                             f"{'full' if report.full else 'structure only'}")
    prune(storage, record.path.parent, cfg.backup.keep)
    return next(r for r in backups.recent(storage, 5) if r.id == record.id)


def _identity(keys: KeyStore) -> age.X25519Identity | None:
    # Unlocked: the new backup is verified in full and can carry the offline backup slot.
    try:
        return keys.identity() if keys.is_unlocked() else None
    except DeviceLockedError:
        return None


def _extra(cfg: Config) -> list[age.X25519Recipient]:
    return [age.X25519Recipient.from_str(cfg.backup.recipient)] if cfg.backup.recipient else []


@contextlib.contextmanager
def _exclusive(storage: Storage) -> Iterator[None]:
    """One backup at a time (the nightly one and ``holdnote backup now``)."""
    with open(storage.data_dir / LOCK_NAME, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupTargetError("another backup is running; wait for it to finish") from None
        yield


def _remove_stale_partials(target: Path) -> None:
    # Left by a power cut in an earlier run: never a backup, only in the way.
    for path in target.iterdir():
        if PARTIAL.match(path.name):
            path.unlink(missing_ok=True)


def _remove_stale_scratch(data_dir: Path) -> None:
    # A snapshot left in data_dir by a power cut mid-backup (we hold the backup lock).
    for path in data_dir.glob(f"{SCRATCH}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _recording_files(storage: Storage) -> list[Path]:
    return sorted(p for p in storage.recordings_dir.glob("*.age")
                  if p.is_file() and reader.RECORDING.fullmatch(f"recordings/{p.name}"))


def _write(cfg: Config, storage: Storage, final: Path, recipients: list,
           moment: datetime, recordings: list[Path], config_path: Path) -> int:
    """Stream the archive into ``.<name>.partial``, then rename it to ``final``; the session count."""
    partial = final.with_name(f".{final.name}.partial")
    try:
        with tempfile.TemporaryDirectory(dir=storage.data_dir, prefix=SCRATCH) as tmp, \
                contextlib.ExitStack() as stack:
            snapshot, sessions = _snapshot(storage, Path(tmp))
            sources = [s for s in (_open(stack, snapshot, reader.DB_MEMBER),
                                   _open(stack, config_path, reader.CONFIG_MEMBER),
                                   _open(stack, cfg.web.tls_cert, reader.CERT_MEMBER),
                                   _open(stack, cfg.web.tls_key, reader.KEY_MEMBER))
                       if s is not None]
            sources += [s for p in recordings
                        if (s := _open(stack, p, f"recordings/{p.name}")) is not None]
            manifest = _manifest(moment, sessions, sources)
            _stream(partial, recipients, manifest, sources, moment)
        os.rename(partial, final)
        fsync_dir(final.parent)
    finally:
        partial.unlink(missing_ok=True)
    return sessions


def _snapshot(storage: Storage, scratch: Path) -> tuple[Path, int]:
    """A consistent copy of the database (SQLite's online backup API) and its session count."""
    copy = scratch / DB_NAME
    with contextlib.closing(sqlite3.connect(storage.db_path, timeout=30)) as src, \
            contextlib.closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
        # One self-contained file: no -wal beside it in the archive.
        dst.execute("PRAGMA journal_mode = DELETE")
    return copy, Storage(scratch).count_sessions()


def _open(stack: contextlib.ExitStack, path: Path, member: str) -> _Source | None:
    """The file opened for the archive; None when it is absent or unreadable (then left out)."""
    try:
        handle = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - the stack closes it
    except (FileNotFoundError, PermissionError):
        return None
    # The size now: a recording still being written is archived as far as it got.
    return _Source(member, handle, os.fstat(handle.fileno()).st_size)


def _manifest(moment: datetime, sessions: int, sources: list[_Source]) -> bytes:
    recordings = sum(1 for s in sources if s.member.startswith("recordings/"))
    doc = reader.Manifest(reader.FORMAT, moment.isoformat(), _version(), socket.gethostname(),
                          sessions, recordings,
                          (reader.MANIFEST, *(s.member for s in sources)))
    return json.dumps(doc.to_json(), indent=1).encode()


def _version() -> str:
    try:
        return metadata.version("holdnote")
    except metadata.PackageNotFoundError:
        return "unknown"


def _stream(partial: Path, recipients: list, manifest: bytes, sources: list[_Source],
            moment: datetime) -> None:
    with open(partial, "xb") as raw:
        os.fchmod(raw.fileno(), 0o600)
        writer = age.StreamWriter(raw, recipients)
        # tarfile needs only write(); the stubs ask for a whole binary file.
        out = cast(IO[bytes], writer)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_info(reader.MANIFEST, len(manifest), moment), io.BytesIO(manifest))
            for source in sources:
                tar.addfile(_info(source.member, source.size, moment), source.handle)
        writer.close()  # the final chunk, flushed and fsynced


def _info(member: str, size: int, moment: datetime) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member)
    info.size, info.mode, info.mtime = size, 0o600, int(moment.timestamp())
    return info


def prune(storage: Storage, target: Path, keep: int) -> list[str]:
    """Delete our backups in ``target`` beyond the newest ``keep``; the names removed.

    Only files named like ours are touched (the name sorts by time); their rows go too.
    """
    ours = sorted(p.name for p in target.iterdir() if NAME.match(p.name))
    doomed = ours[:-keep] if keep > 0 else []
    rows = {(r.target_dir, r.file_name): r.id for r in backups.recent(storage, limit=10_000)}
    for name in doomed:
        (target / name).unlink(missing_ok=True)
        if (str(target), name) in rows:
            backups.forget(storage, rows[(str(target), name)])
    if doomed:
        fsync_dir(target)
    return doomed


def list_backups(cfg: Config, storage: Storage) -> list[BackupRecord]:
    """The recorded backups and failures, newest first."""
    return backups.recent(storage)
