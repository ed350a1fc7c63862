"""The Device page's backup card: where backups go, the last one, and whether it was verified.

Read from the ``backups`` table (:mod:`appliance.store.backups`), which the backup job
writes; ``/healthz`` judges freshness (:func:`web_ui.views.health.backup_problem`).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config import Config
from appliance.store import backups
from appliance.store.backups import BackupRecord
from appliance.store.db import Storage

NOT_CONFIGURED = "No backup configured: set [backup] target_dir (README: Backups)"


@dataclass(frozen=True)
class BackupStatus:
    """What the card shows: ``target`` None means backups are off.

    ``last`` is the newest attempt (it may have failed), ``verified`` the newest
    verified backup, the one a restore would use (the same row when all is well).
    """

    target: str | None
    last: BackupRecord | None
    verified: BackupRecord | None

    @property
    def failed(self) -> bool:
        """The newest attempt failed: the card shows why."""
        return self.last is not None and self.last.error is not None


def backup_status(cfg: Config, storage: Storage) -> BackupStatus:
    """The backup card's content for this configuration."""
    if cfg.backup.target_dir is None:
        return BackupStatus(None, None, None)
    latest = backups.recent(storage, limit=1)
    return BackupStatus(str(cfg.backup.target_dir), latest[0] if latest else None,
                        backups.newest_verified(storage))


def size_text(size_bytes: int) -> str:
    """A file size as ``holdnote backup list`` prints it (MB of 1024 KiB): 0.8 MB, 2.1 GB."""
    if size_bytes >= 2**30:
        return f"{size_bytes / 2**30:.1f} GB"
    return f"{size_bytes / 2**20:.1f} MB"
