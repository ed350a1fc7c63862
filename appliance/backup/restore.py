"""Restoring a backup onto a device (``sudo holdnote restore FILE``).

The order is what keeps a failure harmless: the backup is opened (a wrong
passphrase or recovery key stops it there), every member is extracted into a
staging directory beside the data directory (same file system), and the
staged database is checked (``integrity_check``, schema, audit chain, manifest)
and gets its ``restore.done`` audit entry. Only then do two renames swap it
in: the data directory moves aside to ``<data_dir>.before-restore-<stamp>`` and
the staged one takes its place. Whatever else lives in the data directory and
is not part of a backup (the speech and language models) moves back in.

Anything that fails before the swap leaves the device's data as it was; a
staging directory left behind by a killed restore is removed by the next
attempt. After the swap the configuration and the TLS certificate are put
back (the current configuration kept as ``.before-restore``), and the device
is locked: log in as usual. When the device had data (``--replace``), its old
data stays in the ``before-restore`` directory, whose path the report gives;
on a fresh device that directory holds nothing and is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from appliance import config as config_mod
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore, user_count
from appliance.backup.reader import (
    CERT_MEMBER,
    CONFIG_MEMBER,
    DB_MEMBER,
    KEY_MEMBER,
    Manifest,
    Opener,
    copy_member,
    open_backup,
    read_header,
)
from appliance.backup.verify import SnapshotFacts, check_counts, check_members, check_snapshot
from appliance.errors import (
    BackupFileError,
    ConfigError,
    HoldnoteError,
    RestoreRefusedError,
    StorageError,
)
from appliance.fsutil import atomic_write, fsync_dir
from appliance.store.db import DB_NAME, RECORDINGS, Storage, utcnow

ACTOR = "restore"
# What a backup brings back into the data directory; everything else there stays.
_RESTORED = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", RECORDINGS}
_MARGIN = 64 * 1024 * 1024


@dataclass(frozen=True)
class RestoreReport:
    """What a restore brought back and where the device's previous data went.

    ``previous`` is the directory that holds the data the device had before
    (``None`` when it had none); ``config_note`` says what happened to the
    configuration file.
    """

    file_name: str
    created_at: str
    sessions: int
    recordings: int
    users: int
    audit_entries: int
    data_dir: str
    previous: str | None
    config_note: str
    tls_restored: bool
    version: int = 1

    def to_json(self) -> dict:
        """The report as JSON data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RestoreReport:
        """The report from :meth:`to_json`'s data."""
        return cls(**data)


def staging_dir(data_dir: Path) -> Path:
    """Where a restore extracts to: beside the data directory, on its file system."""
    return data_dir.with_name(f".{data_dir.name}.restore-staging")


def device_has_data(data_dir: Path) -> bool:
    """True when the device holds any session or user (a restore would replace them)."""
    if not (data_dir / DB_NAME).is_file():
        return False
    storage = Storage(data_dir)
    return user_count(storage) > 0 or storage.count_sessions() > 0


def restore_backup(cfg: config_mod.Config, path: str | Path, *, opener: Opener,
                   replace: bool = False, config_path: Path | None = None,
                   now: Callable[[], datetime] = utcnow) -> RestoreReport:
    """Put backup ``path`` back onto this device, opened with ``opener``.

    ``opener``: the recovery key, ``(user name, passphrase)`` or the offline
    backup identity. Refuses (:class:`RestoreRefusedError`) when the device
    already has data, unless ``replace``. ``config_path``: where the running
    configuration was loaded from (default: as ``holdnote`` resolves it).
    """
    path, data_dir = Path(path), cfg.paths.data_dir
    had_data = device_has_data(data_dir)
    try:
        if had_data and not replace:
            raise RestoreRefusedError(
                f"this device already has data in {data_dir} (users or sessions); "
                "restore with --replace to put the backup in its place")
        return _restore(cfg, path, opener, had_data, config_path, now)
    except HoldnoteError as error:
        _audit_failure(data_dir, path.name, error)
        raise


def _restore(cfg: config_mod.Config, path: Path, opener: Opener, had_data: bool,
             config_path: Path | None, now: Callable[[], datetime]) -> RestoreReport:
    data_dir = cfg.paths.data_dir
    if not path.is_file():
        raise BackupFileError(f"{path}: no such backup file")
    read_header(path)  # structure first: a wrong file is named before anything is written
    staging = staging_dir(data_dir)
    _remove(staging)  # left by a restore that was killed half-way
    _check_space(data_dir, path)
    try:
        staging.mkdir(mode=0o700)
        manifest = _extract(path, opener, staging)
        facts = _prepare(staging / "data", data_dir, path.name, manifest, now)
        _chown_tree(staging / "data", _owner(data_dir))
        previous = _swap(staging / "data", data_dir, now())
    except BaseException:
        _remove(staging)
        raise
    config_note = _restore_config(staging / "extra", config_path, data_dir)
    tls = _restore_tls(cfg, staging / "extra", _owner(data_dir))
    _remove(staging)
    KeyStore.for_config(cfg, Storage(data_dir)).lock()  # log in as usual afterwards
    if previous is not None and not had_data:
        _remove(previous)  # a fresh device's empty database: nothing to keep
        previous = None
    return RestoreReport(path.name, manifest.created_at, facts.sessions, manifest.recordings,
                         facts.users, facts.audit_entries + 1, str(data_dir),
                         str(previous) if previous else None, config_note, tls)


def _check_space(data_dir: Path, path: Path) -> None:
    # The plaintext is about as large as the backup; the old data stays until the swap.
    parent = data_dir.parent
    free = shutil.disk_usage(parent if parent.exists() else Path("/")).free
    need = path.stat().st_size + _MARGIN
    if free < need:
        raise StorageError(f"not enough free space beside {data_dir} to restore {path.name}: "
                           f"{need // 2**20} MB needed, {free // 2**20} MB free; free some "
                           "space or restore onto a larger card")


def _extract(path: Path, opener: Opener, staging: Path) -> Manifest:
    data, extra = staging / "data", staging / "extra"
    (data / RECORDINGS).mkdir(mode=0o700, parents=True)
    names = []
    with open_backup(path, opener) as (manifest, members):
        for member in members:
            names.append(member.name)
            dest = extra / member.name
            if member.name == DB_MEMBER or member.name.startswith(f"{RECORDINGS}/"):
                dest = data / member.name
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            copy_member(member, dest)
    check_members(manifest, names, path.name)
    return manifest


def _prepare(staged: Path, data_dir: Path, name: str, manifest: Manifest,
             now: Callable[[], datetime]) -> SnapshotFacts:
    """Check the staged database and make it this device's: paths, audit entry."""
    facts = check_snapshot(staged, name)
    check_counts(manifest, facts, name)
    storage = Storage(staged, now)
    for session in storage.list_sessions():
        if session.audio_path is not None:
            # Recordings now live under this device's data directory.
            moved = data_dir / RECORDINGS / session.audio_path.name
            if session.audio_path != moved:
                storage.update_session(session.id, audio_path=str(moved))
    AuditLog(storage).append(ACTOR, "restore.done", source="console",
                             detail=f"{name}, made {manifest.created_at}")
    storage.checkpoint()  # one self-contained file before it moves
    return facts


def _swap(staged: Path, data_dir: Path, moment: datetime) -> Path | None:
    """Put ``staged`` in place of ``data_dir``; where the previous data went."""
    previous = None
    if data_dir.exists():
        previous = data_dir.with_name(
            f"{data_dir.name}.before-restore-{moment.strftime('%Y%m%dT%H%M%SZ')}")
        os.rename(data_dir, previous)
    try:
        os.rename(staged, data_dir)
    except BaseException:
        if previous is not None:
            os.rename(previous, data_dir)  # as it was
        raise
    fsync_dir(data_dir.parent)
    if previous is not None:
        _carry_over(previous, data_dir)
    return previous


def _carry_over(previous: Path, data_dir: Path) -> None:
    # Models and anything else a backup does not hold stay with the device.
    for entry in previous.iterdir():
        if entry.name not in _RESTORED and not (data_dir / entry.name).exists():
            os.rename(entry, data_dir / entry.name)
    fsync_dir(data_dir)


def _owner(data_dir: Path) -> tuple[int, int] | None:
    """Whom restored files belong to: the data directory's owner, when running as root."""
    if os.geteuid() != 0:
        return None  # an ordinary user owns what it writes already
    target = data_dir if data_dir.exists() else data_dir.parent
    info = target.stat()
    return info.st_uid, info.st_gid


def _chown_tree(root: Path, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    os.chown(root, *owner)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(Path(folder) / name, *owner)


def _restore_config(extra: Path, config_path: Path | None, data_dir: Path) -> str:
    """Put the backup's configuration in place; the current one stays as ``.before-restore``."""
    staged = extra / CONFIG_MEMBER
    if not staged.is_file():
        return "the backup holds no configuration; the current one stays"
    target = config_path or config_mod.resolve_path()
    text = staged.read_bytes()
    try:
        restored = config_mod.from_dict(tomllib.loads(text.decode("utf-8-sig")))
    except (ConfigError, ValueError):
        restored = None
    if restored is None or restored.paths.data_dir != data_dir:
        aside = target.with_name(target.name + ".from-backup")
        atomic_write(aside, text, 0o640)
        return (f"the backup's configuration was not installed (it is invalid here, or its "
                f"data directory differs); it is in {aside}, the current one stays")
    mode, owner = 0o640, None
    if target.exists():
        info = target.stat()
        mode, owner = info.st_mode & 0o777, (info.st_uid, info.st_gid)
        shutil.copy2(target, target.with_name(target.name + ".before-restore"))
    atomic_write(target, text, mode)
    if owner is not None and os.geteuid() == 0:
        os.chown(target, *owner)
    return f"configuration restored to {target}" + (
        f" (the previous one is {target.name}.before-restore)" if owner else "")


def _restore_tls(cfg: config_mod.Config, extra: Path, owner: tuple[int, int] | None) -> bool:
    """Put the backup's TLS certificate and key at their configured paths."""
    cert, key = extra / CERT_MEMBER, extra / KEY_MEMBER
    if not (cert.is_file() and key.is_file()):
        return False
    for source, target, mode in ((cert, cfg.web.tls_cert, 0o644), (key, cfg.web.tls_key, 0o600)):
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(target, source.read_bytes(), mode)
        if owner is not None:
            os.chown(target, *owner)
    return True


def _remove(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def _audit_failure(data_dir: Path, name: str, error: HoldnoteError) -> None:
    # Where the device can: its own audit log, if it has one.
    if not (data_dir / DB_NAME).is_file():
        return
    with contextlib.suppress(HoldnoteError, OSError):
        AuditLog(Storage(data_dir)).append(ACTOR, "restore.failed", source="console",
                                           detail=f"{name}: {type(error).__name__}")
