"""``holdnote backup now | list | verify FILE``: encrypted backups from the command line.

``now`` writes a backup to ``backup.target_dir`` (the nightly unit runs it
after the overnight job, with ``--if-configured`` so a device without a target
is not a failure); ``list`` shows the recent backups and failures; ``verify``
checks a file (everything when the device is unlocked, else its structure).
"""

from __future__ import annotations

import argparse
import json

from appliance import config as config_mod
from appliance.app.cli_errors import EXIT_OK

SUMMARY = "make, list or check encrypted backups (backup now | list | verify FILE)"
MB = 1024 * 1024


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``backup`` subcommand and its actions."""
    backup = sub.add_parser("backup", help=SUMMARY, description=SUMMARY[0].upper() + SUMMARY[1:])
    actions = backup.add_subparsers(dest="backup_action", required=True, metavar="ACTION")
    now = actions.add_parser("now", help="write a backup to backup.target_dir now",
                             description="Write, verify and record a backup in "
                             "backup.target_dir; older ones beyond backup.keep are removed.")
    now.add_argument("--if-configured", action="store_true",
                     help="do nothing (exit 0) when backup.target_dir is not set")
    listing = actions.add_parser("list", help="the recent backups and failed attempts",
                                 description="The recent backups and failed attempts, newest first.")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    verify = actions.add_parser("verify", help="check a backup file",
                                description="Check a backup file: with the device unlocked "
                                "everything (decryption, database, audit chain), else its structure.")
    verify.add_argument("file", metavar="FILE", help="the backup (holdnote-backup-*.age)")
    return backup


def run(cfg: config_mod.Config, args: argparse.Namespace) -> int:
    """Run ``holdnote backup ACTION``."""
    from appliance.access.keys import KeyStore
    from appliance.store.db import Storage

    storage = Storage(cfg.paths.data_dir)
    keys = KeyStore.for_config(cfg, storage)
    if args.backup_action == "now":
        return _now(cfg, storage, keys, args.if_configured, config_mod.resolve_path(args.config))
    if args.backup_action == "list":
        return _list(cfg, storage, args.json)
    return _verify(cfg, storage, keys, args.file)


def _now(cfg: config_mod.Config, storage, keys, if_configured: bool, config_path) -> int:
    from appliance.backup import make_backup

    if cfg.backup.target_dir is None and if_configured:
        print("backups are off (backup.target_dir is not set); nothing to do")
        return EXIT_OK
    record = make_backup(cfg, storage, keys, config_path=config_path)  # --config's file
    check = "in full" if keys.is_unlocked() else "structure only (the device is locked)"
    print(f"backup written: {record.path} ({_size(record.size_bytes)}, "
          f"{record.sessions} sessions), verified {check}")
    return EXIT_OK


def _list(cfg: config_mod.Config, storage, as_json: bool) -> int:
    from appliance.backup import list_backups

    records = list_backups(cfg, storage)
    if as_json:
        print(json.dumps([_row(r) for r in records], indent=2))
        return EXIT_OK
    if not records:
        print("no backups yet" + ("" if cfg.backup.target_dir else
                                  " (backups are off: set backup.target_dir)"))
    for r in records:
        when = r.created_at.strftime("%Y-%m-%d %H:%M UTC")
        if r.error:
            print(f"{when}  FAILED  {r.error}")
            continue
        state = "verified" if r.verified_at else "not verified"
        gone = "" if r.path.exists() else "  (file not found)"
        print(f"{when}  {r.path}  {_size(r.size_bytes)}  {r.sessions} sessions  {state}{gone}")
    return EXIT_OK


def _row(r) -> dict:
    return {"created_at": r.created_at.isoformat(), "file": str(r.path) if r.file_name else None,
            "size_bytes": r.size_bytes, "sessions": r.sessions,
            "verified_at": r.verified_at.isoformat() if r.verified_at else None,
            "error": r.error, "present": bool(r.file_name) and r.path.exists()}


def _verify(cfg: config_mod.Config, storage, keys, file: str) -> int:
    from appliance.access.audit import AuditLog
    from appliance.backup import verify_backup

    identity = keys.identity() if keys.is_unlocked() else None
    report = verify_backup(cfg, file, identity)
    if report.full:
        print(f"{report.file_name}: OK, checked in full ({report.sessions} sessions, "
              f"{report.recordings} recordings, {report.audit_entries} audit entries; "
              f"made {report.created_at})")
    else:
        print(f"{report.file_name}: structure OK; {report.note}")
    AuditLog(storage).append("cli", "backup.verified", source="console",
                             detail=f"{report.file_name} {'full' if report.full else 'structure only'}")
    return EXIT_OK


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB"
