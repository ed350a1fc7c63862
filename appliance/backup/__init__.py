"""Encrypted backups and restore: an SD card that dies loses nothing.

A backup is one age file in ``backup.target_dir`` (a drive or share IT mounts),
encrypted to the practice recipient (and ``backup.recipient``, a key IT keeps
offline), carrying the key slots so a clinician's passphrase or the recovery key
opens it on a new device. Inside, a streamed tar: ``MANIFEST.json``, a
consistent database snapshot, the configuration, the TLS certificate and the
recordings on disk.

The public API, one module per part: :func:`make_backup` and
:func:`list_backups` (:mod:`.archive`, checks on the target in :mod:`.target`),
:func:`verify_backup` (:mod:`.verify`), :func:`restore_backup` (:mod:`.restore`);
the key slots stanza is :mod:`.slots`, reading a file :mod:`.reader`.
"""

from __future__ import annotations

from appliance.backup.archive import list_backups, make_backup
from appliance.backup.restore import RestoreReport, restore_backup
from appliance.backup.verify import VerifyReport, verify_backup
from appliance.store.backups import BackupRecord

__all__ = ["BackupRecord", "RestoreReport", "VerifyReport", "list_backups", "make_backup",
           "restore_backup", "verify_backup"]
