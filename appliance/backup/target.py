"""Checks on the backup target before anything is written to it.

The target is a directory IT mounts: a USB drive or a network share. Each
check that fails raises :class:`BackupTargetError` with one sentence saying
what is wrong and what to do, before a byte is written, so a failed backup
leaves the target and the previous backups as they were.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from appliance.config import Config
from appliance.errors import BackupTargetError
from appliance.store.db import Storage

MB = 1024 * 1024


def target_dir(cfg: Config) -> Path:
    """The configured target; :class:`BackupTargetError` when backups are not set up."""
    if cfg.backup.target_dir is None:
        raise BackupTargetError("backups are off: set backup.target_dir in the configuration "
                                "to the directory where IT mounts the backup drive or share")
    return cfg.backup.target_dir


def _on_own_mount(target: Path, data_dir: Path) -> bool:
    # A mount point, or at least another file system than the data directory's:
    # a share mounted one level up still keeps the backup off the SD card.
    return os.path.ismount(target) or target.stat().st_dev != data_dir.stat().st_dev


def check_target(cfg: Config, storage: Storage, estimate: int) -> Path:
    """The target directory, checked: it exists, is mounted (when required), is
    writable and has room for ``estimate`` bytes plus ``backup.margin_mb``."""
    target = target_dir(cfg)
    if not target.is_dir():
        raise BackupTargetError(f"backup target {target} does not exist: mount the backup "
                                "drive or share there (or fix backup.target_dir)")
    if cfg.backup.require_mount and not _on_own_mount(target, storage.data_dir):
        raise BackupTargetError(f"backup target {target} is not a mounted drive or share "
                                "(it is on the device's own SD card): mount the backup drive "
                                "there, or set backup.require_mount = false")
    if not os.access(target, os.W_OK | os.X_OK) or _read_only(target):
        raise BackupTargetError(f"backup target {target} is read-only: remount it writable, "
                                "give the holdnote user write permission, and run "
                                "sudo ./install.sh again so holdnote-backup.service may write "
                                "there")
    needed = estimate + cfg.backup.margin_mb * MB
    free = shutil.disk_usage(target).free
    if free < needed:
        raise BackupTargetError(f"backup target {target} is full: {free // MB} MB free, "
                                f"{-(-needed // MB)} MB needed (the backup and a "
                                f"{cfg.backup.margin_mb} MB margin); free space there, "
                                "lower backup.keep or use a larger drive")
    return target


def _read_only(target: Path) -> bool:
    # A file system mounted read-only passes os.access for root; statvfs knows.
    return bool(os.statvfs(target).f_flag & os.ST_RDONLY)


def estimate_size(storage: Storage, recordings: list[Path]) -> int:
    """About how large the next backup will be: the database and the recordings."""
    total = sum(_size(p) for p in (storage.db_path, storage.db_path.with_name(
        storage.db_path.name + "-wal")))
    return total + sum(_size(p) for p in recordings)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
