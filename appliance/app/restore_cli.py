"""``holdnote restore FILE``: put a backup back onto this device.

Run as root on a freshly installed device (``sudo holdnote restore FILE``).
The backup opens with the recovery key, a clinician's passphrase (as it was
when the backup was made) or the offline backup key IT keeps; secrets are read
from the terminal or standard input, never from the command line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from appliance import config as config_mod
from appliance.app.cli_errors import EXIT_OK
from appliance.errors import HoldnoteError, KeyFormatError

SUMMARY = "restore a backup onto this device (run as root; the device must be new, or --replace)"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``restore`` subcommand's arguments."""
    restore = sub.add_parser(
        "restore", help=SUMMARY,
        description="Restore a backup file made by 'holdnote backup': sessions, signed notes, "
        "users, audit log, configuration and TLS certificate. Refuses on a device that "
        "already has users or sessions unless --replace (its data is then kept aside). "
        "The secret is read from the terminal, or one line of standard input.")
    restore.add_argument("file", metavar="FILE", help="the backup (holdnote-backup-*.age)")
    restore.add_argument("--replace", action="store_true",
                         help="replace this device's data (kept aside in <data_dir>.before-restore-*)")
    opener = restore.add_mutually_exclusive_group(required=True)
    opener.add_argument("--recovery-key", action="store_true",
                        help="open it with the practice's recovery key (asked for)")
    opener.add_argument("--user", metavar="NAME",
                        help="open it with NAME's passphrase as it was at backup time (asked for)")
    opener.add_argument("--identity", metavar="FILE",
                        help="open it with the offline backup key in FILE (AGE-SECRET-KEY-1...)")
    return restore


def opener_from(args: argparse.Namespace, read_secret: Callable[[str], str]):
    """What opens the backup, from the arguments and a prompt."""
    if args.user:
        return args.user, read_secret(f"Passphrase for {args.user} (at the time of the backup): ")
    if args.identity:
        return _identity(Path(args.identity))
    return read_secret("Recovery key: ")


def _identity(path: Path):
    from appliance import age  # here: the other commands start without the crypto library

    try:
        found = age.parse_identities(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, KeyFormatError) as error:
        raise HoldnoteError(f"{path}: cannot read an age identity from it ({error})") from None
    keys = [i for i in found if isinstance(i, age.X25519Identity)]
    if not keys:
        raise HoldnoteError(f"{path}: it holds no AGE-SECRET-KEY-1 identity")
    return keys[0]


def _check_user(data_dir: Path) -> None:
    # The restored files must end up owned by the service user: that takes root.
    owner = data_dir.stat().st_uid if data_dir.exists() else os.geteuid()
    if os.geteuid() not in (0, owner):
        raise HoldnoteError("restore needs root to put the files back as the holdnote "
                            "user's: run 'sudo holdnote restore FILE'")


def run(cfg: config_mod.Config, args: argparse.Namespace,
        read_secret: Callable[[str], str]) -> int:
    """Restore ``args.file``; print what came back and what to do next."""
    from appliance.backup.restore import restore_backup

    _check_user(cfg.paths.data_dir)
    opener = opener_from(args, read_secret)
    report = restore_backup(cfg, Path(args.file), opener=opener, replace=args.replace,
                            config_path=config_mod.resolve_path(args.config))
    print(f"Restored {report.file_name} (made {report.created_at}): {report.sessions} "
          f"sessions, {report.recordings} recordings, {report.users} users; the audit log "
          f"verifies ({report.audit_entries} entries, this restore the last).")
    print(report.config_note[0].upper() + report.config_note[1:] + ".")
    print("TLS certificate restored." if report.tls_restored
          else "The backup held no TLS certificate; the current one stays.")
    if report.previous:
        print(f"The device's previous data is kept in {report.previous}; "
              "remove it once you have checked the restore.")
    # Not every holdnote-* unit: restarting the overnight job would start a night run now.
    print("The device is locked. Restart the recorder and the web page (sudo systemctl restart "
          "holdnote-recorder holdnote-web), run sudo ./install.sh again to apply the restored "
          "configuration, then log in as usual.")
    return EXIT_OK
