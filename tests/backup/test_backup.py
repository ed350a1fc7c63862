"""Making a backup: one age file the stock ``age`` CLI opens, written atomically, pruned safely.

A seeded device (two transcribed sessions, one recording waiting) is backed up
to a directory; the file is read back with the stock ``age`` CLI and the
practice identity, as IT would, and with the key slots it carries (a
clinician's passphrase, the recovery key). Every way the target can be wrong
gives its own sentence and leaves the earlier backups as they were.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import age
from appliance import config as config_mod
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.backup import list_backups, make_backup
from appliance.backup.slots import STANZA_TYPE, header_stanzas, open_identity, read_slots
from appliance.backup.target import estimate_size
from appliance.errors import (
    BackupFileError,
    BackupTargetError,
    HeaderMacError,
    UnknownUserError,
    WrongPassphraseError,
)
from appliance.store.db import State, Storage
from tests.conftest import make_config, need_tool
from tests.support.seed import (
    PASSPHRASE,
    USER,
    Clock,
    add_session,
    init_practice,
    transcript_result,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Device:
    cfg: config_mod.Config
    storage: Storage
    keys: KeyStore
    recovery_key: str
    clock: Clock
    target: Path

    def backup(self, cfg: config_mod.Config | None = None, hours: int = 0):
        self.clock.at = START + timedelta(days=1, hours=hours)
        return make_backup(cfg or self.cfg, self.storage, self.keys)

    def with_backup(self, **values) -> config_mod.Config:
        return self.cfg.model_copy(update={"backup": self.cfg.backup.model_copy(update=values)})

    def files(self) -> list[str]:
        return sorted(os.listdir(self.target))

    def actions(self) -> list[str]:
        return [e.action for e in AuditLog(self.storage).entries(newest_first=False)]


def seed_device(tmp_path: Path, target: Path, monkeypatch) -> Device:
    cfg = make_config(tmp_path, backup={"target_dir": str(target), "require_mount": False,
                                        "keep": 2, "margin_mb": 0})
    clock = Clock(START)
    storage = Storage(cfg.paths.data_dir, now=clock)
    recovery = init_practice(storage, cfg.paths.runtime_dir)
    keys = KeyStore.for_config(cfg, storage)
    AuditLog(storage).append(USER, "keys.init", source="console")  # as setup logs it
    recipient = keys.recipient()
    for day, minutes in enumerate((3, 2)):
        add_session(storage, clock, recipient, started_at=START - timedelta(days=3 - day),
                    result=transcript_result(minutes, seed=day))
    add_session(storage, clock, recipient, started_at=START, state=State.RECORDED)
    tls = cfg.paths.data_dir / "tls"
    tls.mkdir()
    (tls / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nfake\n")
    (tls / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nfake\n")
    config_file = tmp_path / "holdnote.toml"
    config_file.write_text(config_mod.to_toml(cfg))
    monkeypatch.setenv(config_mod.ENV_VAR, str(config_file))
    return Device(cfg, storage, keys, recovery, clock, target)


@pytest.fixture
def device(tmp_path, monkeypatch) -> Device:
    target = tmp_path / "target"
    target.mkdir()
    return seed_device(tmp_path, target, monkeypatch)


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str):
    """A real small file system at ``path`` (needs root, as the tests have in CI)."""
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the tests run as root in CI)")
    opts = ",".join((f"size={size}", *options))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


# --- what a backup is -------------------------------------------------------------------


def test_the_stock_age_cli_opens_a_backup_with_the_practice_identity(device, tmp_path):
    """IT can read a backup with nothing but ``age`` and the practice identity."""
    age_cli = need_tool("age")
    record = device.backup()
    assert device.files() == [record.file_name]
    assert record.file_name == "holdnote-backup-20260303T090000Z.age"
    assert record.verified_at is not None and record.error is None and record.sessions == 3

    identity_file = device.cfg.paths.runtime_dir / "identity.txt"
    plain = subprocess.run([age_cli, "-d", "-i", str(identity_file), str(record.path)],
                           capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        names = tar.getnames()
        contents = {n: tar.extractfile(n).read() for n in names}  # type: ignore[union-attr]

    manifest = json.loads(contents["MANIFEST.json"])
    recordings = sorted(device.storage.recordings_dir.iterdir())
    assert names[0] == "MANIFEST.json" and manifest["members"] == names
    assert (manifest["sessions"], manifest["recordings"]) == (3, len(recordings)) == (3, 1)
    for path in recordings:
        assert contents[f"recordings/{path.name}"] == path.read_bytes()
    data = device.cfg.paths.data_dir
    assert contents["tls/cert.pem"] == (data / "tls" / "cert.pem").read_bytes()
    assert contents["tls/key.pem"] == (data / "tls" / "key.pem").read_bytes()
    assert contents["config/holdnote.toml"] == config_mod.resolve_path().read_bytes()

    snapshot = tmp_path / "snapshot.db"
    snapshot.write_bytes(contents["holdnote.db"])
    with contextlib.closing(sqlite3.connect(snapshot)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        copied = conn.execute("SELECT id, state, note_enc FROM sessions "
                              "LEFT JOIN notes ON notes.session_id = sessions.id "
                              "ORDER BY id").fetchall()
    with contextlib.closing(sqlite3.connect(device.storage.db_path)) as conn:
        live = conn.execute("SELECT id, state, note_enc FROM sessions "
                            "LEFT JOIN notes ON notes.session_id = sessions.id "
                            "ORDER BY id").fetchall()
    assert copied == live and len(live) == 3
    assert device.actions()[-2:] == ["backup.verified", "backup.done"]
    # The snapshot's scratch copy in the data directory is gone.
    assert not [p for p in data.iterdir() if p.name.startswith(".backup-")]


def test_a_locked_device_backs_up_and_checks_the_structure(device):
    """The nightly job needs no key: a locked device still backs up (structure verified)."""
    device.keys.lock()
    record = device.backup()
    assert record.ok and record.path.is_file()
    assert "backup.verified" in device.actions()
    entry = next(e for e in AuditLog(device.storage).entries() if e.action == "backup.verified")
    assert entry.detail == f"{record.file_name} structure only"


def test_the_key_slots_open_a_backup_with_a_passphrase_or_the_recovery_key(device):
    record = device.backup()
    slots = read_slots(header_stanzas(record.path))
    practice = device.keys.identity()
    assert slots.recipient == str(practice.to_recipient()) and slots.users == (USER,)

    for opener in ((USER, PASSPHRASE), device.recovery_key):
        identity = open_identity(slots, opener)
        assert str(identity) == str(practice)
        # Our age module reads past the extra stanza, as the stock CLI does.
        with age.StreamReader(record.path, [identity]) as stream:
            assert stream.read(512)

    with pytest.raises(WrongPassphraseError, match="wrong passphrase for 'dr.rivera'"):
        open_identity(slots, (USER, "not the passphrase at all"))
    with pytest.raises(WrongPassphraseError, match="recovery key does not open this backup"):
        open_identity(slots, str(age.X25519Identity.generate()))
    with pytest.raises(WrongPassphraseError, match="not a recovery key"):
        open_identity(slots, "my dog's name")
    with pytest.raises(UnknownUserError, match="no key slot for 'dr.who'.*dr.rivera"):
        open_identity(slots, ("dr.who", PASSPHRASE))


def test_the_key_slots_stanza_is_covered_by_the_header_mac(device, tmp_path):
    """Swapping the key slots (to plant a passphrase) breaks the file for every reader."""
    age_cli = need_tool("age")
    record = device.backup()
    stanza = next(s for s in header_stanzas(record.path) if s.type == STANZA_TYPE)
    body = json.loads(stanza.body)
    body["slots"][0]["user"] = "mallory"
    forged = age.Stanza(STANZA_TYPE, (), json.dumps(body).encode())
    raw = record.path.read_bytes()
    assert raw.count(stanza.encode()) == 1
    altered = tmp_path / "altered.age"
    altered.write_bytes(raw.replace(stanza.encode(), forged.encode()))

    with pytest.raises(HeaderMacError):
        age.decrypt_file(altered, tmp_path / "out", [device.keys.identity()])
    done = subprocess.run([age_cli, "-d", "-i", str(device.keys.identity_path), str(altered)],
                          capture_output=True, check=False)
    assert done.returncode != 0 and b"MAC" in done.stderr


def test_the_offline_backup_key_opens_the_practice_data(device):
    """backup.recipient: IT's offline key opens the file and, through its slot, the practice key."""
    offline = age.X25519Identity.generate()
    record = device.backup(device.with_backup(recipient=str(offline.to_recipient())))
    slots = read_slots(header_stanzas(record.path))
    assert str(open_identity(slots, offline)) == str(device.keys.identity())
    with age.StreamReader(record.path, [offline]) as stream:
        assert stream.read(512)


# --- generations --------------------------------------------------------------------------


def test_keep_two_removes_the_oldest_once_the_new_one_is_verified(device):
    made = [device.backup(hours=h) for h in range(3)]
    assert device.files() == [r.file_name for r in made[1:]]
    assert [r.file_name for r in list_backups(device.cfg, device.storage)] == [
        r.file_name for r in reversed(made[1:])]
    # Files not named like ours are never touched.
    (device.target / "notes.txt").write_text("IT's own file")
    device.backup(hours=3)
    assert device.files() == [made[2].file_name, "holdnote-backup-20260303T120000Z.age",
                              "notes.txt"]


def test_a_backup_that_fails_its_check_removes_nothing(device):
    """An altered audit chain fails the new backup's verification: the old ones all stay."""
    kept = [device.backup(hours=h).file_name for h in range(2)]
    with contextlib.closing(sqlite3.connect(device.storage.db_path)) as conn, conn:
        conn.execute("UPDATE audit SET detail = 'edited' WHERE seq = 1")
    with pytest.raises(BackupFileError, match="audit log inside does not verify"):
        device.backup(hours=2)
    assert device.files() == kept
    newest = list_backups(device.cfg, device.storage)[0]
    assert newest.verified_at is None and "audit log" in (newest.error or "")
    assert device.actions()[-1] == "backup.failed"


# --- the target ---------------------------------------------------------------------------


def test_a_missing_target_is_named_with_the_fix(device):
    cfg = device.with_backup(target_dir=device.target / "usb")
    with pytest.raises(BackupTargetError, match=r"usb does not exist: mount the backup drive"):
        device.backup(cfg)
    failed = list_backups(cfg, device.storage)[0]
    assert failed.error and "does not exist" in failed.error and failed.file_name == ""
    assert device.actions()[-1] == "backup.failed"


def test_a_target_on_the_sd_card_is_refused_when_a_mount_is_required(device):
    with pytest.raises(BackupTargetError, match="not a mounted drive or share.*require_mount"):
        device.backup(device.with_backup(require_mount=True))
    assert device.files() == []


def test_a_read_only_target_is_refused(device, tmp_path):
    with tmpfs(tmp_path / "ro", "1m", "ro") as target:
        with pytest.raises(BackupTargetError, match="is read-only: remount it writable"):
            device.backup(device.with_backup(target_dir=target, require_mount=True))
        assert os.listdir(target) == []


def test_a_target_without_room_for_the_backup_and_margin_is_refused(device):
    first = device.backup().file_name
    with pytest.raises(BackupTargetError, match=r"is full: .* MB free, .* needed .*larger drive"):
        device.backup(device.with_backup(margin_mb=1_000_000), hours=1)
    assert device.files() == [first]


def test_a_target_that_fills_up_while_writing_keeps_no_partial_file(device, tmp_path):
    """The estimate fits but the file does not: no partial file, the earlier backup intact."""
    with tmpfs(tmp_path / "usb", "2m") as target:
        cfg = device.with_backup(target_dir=target, require_mount=True)
        first = device.backup(cfg)
        before = first.path.read_bytes()
        recordings = sorted(device.storage.recordings_dir.iterdir())
        estimate = estimate_size(device.storage, recordings)
        free = os.statvfs(target).f_bavail * os.statvfs(target).f_frsize
        (target / "filler").write_bytes(b"\0" * (free - estimate - 4096))
        with pytest.raises(BackupTargetError, match="filled up during the backup"):
            device.backup(cfg, hours=1)
        assert sorted(os.listdir(target)) == sorted([first.file_name, "filler"])
        assert first.path.read_bytes() == before


# --- the command line ---------------------------------------------------------------------


def test_backup_now_list_and_verify_from_the_command_line(device, capsys):
    from appliance.app.cli import main

    assert main(["backup", "now"]) == 0
    written = capsys.readouterr().out
    name = device.files()[0]
    assert f"backup written: {device.target / name}" in written and "verified in full" in written
    assert main(["backup", "list"]) == 0
    assert f"{device.target / name}" in capsys.readouterr().out.split("verified")[0]
    assert main(["backup", "verify", str(device.target / name)]) == 0
    assert "OK, checked in full (3 sessions, 1 recordings" in capsys.readouterr().out

    cut = device.target / "cut.age"
    cut.write_bytes((device.target / name).read_bytes()[:-100])
    assert main(["backup", "verify", str(cut)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("holdnote: cut.age: ") and "cut short" in err and "\n" not in err


def test_backup_now_packs_the_configuration_that_config_names(device, capsys, tmp_path):
    """``holdnote --config FILE backup now`` backs up FILE, not the default configuration."""
    from appliance import age
    from appliance.app.cli import main

    other = tmp_path / "elsewhere.toml"
    other.write_text("# the file --config names\n" + config_mod.to_toml(device.cfg))
    assert main(["--config", str(other), "backup", "now"]) == 0
    capsys.readouterr()
    identity = age.X25519Identity.from_str(
        (device.cfg.paths.runtime_dir / "identity.txt").read_text().strip())
    plain = age.decrypt((device.target / device.files()[0]).read_bytes(), [identity])
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        packed = tar.extractfile("config/holdnote.toml").read()  # type: ignore[union-attr]
    assert packed == other.read_bytes()


def test_backup_now_names_the_target_problem_in_one_line(device, capsys, tmp_path):
    from appliance.app.cli import main

    config_file = tmp_path / "missing.toml"
    config_file.write_text(config_mod.to_toml(device.with_backup(target_dir=tmp_path / "usb")))
    assert main(["--config", str(config_file), "backup", "now"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"holdnote: backup target {tmp_path / 'usb'} does not exist: mount the "
                   "backup drive or share there (or fix backup.target_dir)")


def test_the_nightly_run_without_a_target_is_not_a_failure(device, capsys, tmp_path):
    from appliance.app.cli import main

    off = device.cfg.model_copy(update={"backup": config_mod.Backup()})
    config_file = tmp_path / "off.toml"
    config_file.write_text(config_mod.to_toml(off))
    assert main(["--config", str(config_file), "backup", "now", "--if-configured"]) == 0
    assert "backups are off" in capsys.readouterr().out
    assert main(["--config", str(config_file), "backup", "now"]) == 1
    assert "backups are off: set backup.target_dir" in capsys.readouterr().err
    assert "backup.failed" not in device.actions()
