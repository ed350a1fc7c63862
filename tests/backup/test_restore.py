"""Restore (appliance/backup/restore.py and ``holdnote restore``): everything comes
back on a new device, and every bad file, wrong secret or interruption leaves the
device's data as it was.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pytest

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.app import cli
from appliance.backup import restore as restore_mod
from appliance.backup.restore import restore_backup, staging_dir
from appliance.errors import (
    BackupFileError,
    RestoreRefusedError,
    UnknownUserError,
    WrongPassphraseError,
)
from appliance.store.db import Storage
from tests.backup.device import (
    ADDENDUM,
    CERT,
    COLLEAGUE,
    COLLEAGUE_PASSPHRASE,
    KEY,
    NOTE,
    Device,
    back_up,
    cut,
    flip,
    fresh_device,
    header_size,
    rewrite,
    seed,
    snapshot,
)
from tests.conftest import PASSPHRASE, USER


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Device:
    """The device that was backed up (it died; its backup survives)."""
    return seed(fresh_device(tmp_path_factory.mktemp("old")))


@pytest.fixture(scope="module")
def backup(source) -> Path:
    """Its backup, made by the real writer."""
    return back_up(source)


@pytest.fixture
def new(tmp_path) -> Device:
    """A freshly installed device to restore onto."""
    return fresh_device(tmp_path / "new")


def restore(device: Device, path: Path, opener, **kwargs):
    return restore_backup(device.cfg, path, opener=opener, config_path=device.config_path,
                          **kwargs)


def reopened(device: Device) -> tuple[Storage, KeyStore]:
    """The restored device as its services would open it."""
    storage = Storage(device.cfg.paths.data_dir)
    return storage, KeyStore(storage, device.cfg.paths.runtime_dir, work_factor=10)


# --- everything comes back ------------------------------------------------------


def test_restore_with_the_recovery_key_brings_back_sessions_notes_users_and_recordings(
        source, backup, new):
    report = restore(new, backup, source.recovery)
    storage, keys = reopened(new)
    identity = keys.open_slot(USER, PASSPHRASE)  # the clinicians log in as before
    assert str(identity.to_recipient()) == str(source.keys.recipient())
    assert sorted(keys.status().users) == sorted([USER, COLLEAGUE])
    assert (report.sessions, report.users, report.recordings) == (3, 2, 3)
    note, addenda = storage.load_note_with_addenda(1)
    assert note is not None and note["signed_at"] and note["signed_by"] == USER
    assert age.decrypt(note["note_enc"], [identity]) == NOTE
    assert [age.decrypt(a["text_enc"], [identity]) for a in addenda] == [ADDENDUM]
    for old in source.storage.list_sessions():
        session = storage.get_session(old.id)
        assert session.audio_path == new.cfg.paths.data_dir / "recordings" / old.audio_path.name
        assert age.decrypt(session.audio_path.read_bytes(), [identity]) == \
            age.decrypt(old.audio_path.read_bytes(), [identity])


def test_restore_appends_restore_done_to_the_restored_audit_chain_and_leaves_the_device_locked(
        source, backup, new):
    report = restore(new, backup, (USER, PASSPHRASE))
    storage, keys = reopened(new)
    verdict = AuditLog(storage).verify()
    assert verdict.ok, verdict.reason
    last = AuditLog(storage).entries(limit=1)[0]
    assert (last.actor, last.action) == ("restore", "restore.done")
    assert backup.name in (last.detail or "") and report.created_at in (last.detail or "")
    assert verdict.entries == report.audit_entries
    restored = AuditLog(storage).entries(newest_first=False)[:-1]
    assert [e.hash for e in restored] == \
        [e.hash for e in AuditLog(source.storage).entries(newest_first=False)[:len(restored)]]
    assert not keys.is_unlocked()


def test_restore_puts_back_tls_keeps_the_models_and_cleans_up(source, backup, new):
    report = restore(new, backup, source.recovery)
    data_dir = new.cfg.paths.data_dir
    assert report.tls_restored
    assert (new.cfg.web.tls_cert.read_bytes(), new.cfg.web.tls_key.read_bytes()) == (CERT, KEY)
    assert (data_dir / "models" / "tiny.bin").read_bytes() == b"model weights"
    assert not staging_dir(data_dir).exists()
    assert report.previous is None  # a fresh device had nothing worth keeping
    assert not list(data_dir.parent.glob("data.before-restore-*"))


def test_restore_onto_the_same_paths_restores_the_config_and_keeps_the_current_one(tmp_path):
    # The story: the card dies, IT installs again at the same paths, restores.
    root = tmp_path / "device"
    old = seed(fresh_device(root))
    path = back_up(old)
    kept = tmp_path / path.name
    shutil.copy(path, kept)
    shutil.rmtree(root)
    again = fresh_device(root)
    again.config_path.write_text(again.config_path.read_text() + "# fresh install\n")
    report = restore(again, kept, old.recovery)
    assert "restored" in report.config_note
    assert again.config_path.read_text() == old.config_path.read_text()
    assert again.config_path.with_name("holdnote.toml.before-restore").read_text().endswith(
        "# fresh install\n")
    storage, keys = reopened(again)
    assert keys.open_slot(COLLEAGUE, COLLEAGUE_PASSPHRASE)
    assert AuditLog(storage).verify().ok


def test_a_config_for_other_paths_is_set_aside_not_installed(source, backup, new):
    before = new.config_path.read_text()
    report = restore(new, backup, source.recovery)
    assert new.config_path.read_text() == before
    aside = new.config_path.with_name("holdnote.toml.from-backup")
    assert aside.read_text() == source.config_path.read_text()
    assert str(aside) in report.config_note


# --- a device with data -----------------------------------------------------------


def test_a_device_with_data_is_refused_in_one_sentence_and_left_as_it_was(backup, tmp_path):
    busy = seed(fresh_device(tmp_path / "busy"))
    before = busy.storage.list_sessions()
    with pytest.raises(RestoreRefusedError, match="already has data.*--replace"):
        restore(busy, backup, busy.recovery)
    assert busy.storage.list_sessions() == before
    last = AuditLog(busy.storage).entries(limit=1)[0]
    assert (last.actor, last.action) == ("restore", "restore.failed")
    assert AuditLog(busy.storage).verify().ok


def test_replace_keeps_the_previous_data_aside_and_says_where(source, backup, tmp_path):
    busy = seed(fresh_device(tmp_path / "busy"))
    busy.keys.unlock(USER, PASSPHRASE)
    report = restore(busy, backup, source.recovery, replace=True)
    assert report.previous is not None
    previous = Path(report.previous)
    assert previous.name.startswith("data.before-restore-")
    assert Storage(previous).count_sessions() == 3  # the replaced data, whole
    storage, keys = reopened(busy)
    assert str(keys.recipient()) == str(source.keys.recipient())
    assert not keys.is_unlocked()  # the other practice's key is gone from RAM


# --- bad input: one clear error, nothing changed ------------------------------------


def _unchanged(device: Device, before: dict[str, bytes]) -> None:
    data_dir = device.cfg.paths.data_dir
    after = snapshot(data_dir)
    assert {k: v for k, v in after.items() if not k.startswith("holdnote.db")} == \
        {k: v for k, v in before.items() if not k.startswith("holdnote.db")}
    storage = Storage(data_dir)
    assert storage.count_sessions() == 0 and not device.keys.status().users
    assert [e.action for e in AuditLog(storage).entries()] == ["restore.failed"]
    assert not staging_dir(data_dir).exists()
    assert not list(data_dir.parent.glob("data.before-restore-*"))


def _bad_files(backup: Path, tmp: Path, other: Path):
    start = header_size(backup)
    return {
        "cut inside a chunk": (cut(backup, tmp / "a.age", backup.stat().st_size - 100),
                               BackupFileError, "cut short"),
        "cut at a chunk boundary": (cut(backup, tmp / "b.age", start + 16 + 65552),
                                    BackupFileError, "cut short"),
        "header MAC flipped": (flip(backup, tmp / "c.age", start - 3),
                               BackupFileError, "altered|not a readable"),
        "payload flipped in a chunk": (flip(backup, tmp / "d.age", start + 16 + 5000),
                                       BackupFileError, "altered or damaged"),
        "payload flipped in the last chunk": (flip(backup, tmp / "g.age", -40),
                                              BackupFileError, "end is damaged"),
        "another practice's recipient": (other, BackupFileError, "another practice"),
        "not a backup": (_text(tmp / "e.age"), BackupFileError, "not a Holdnote backup"),
        "an age file without key slots": (_plain_age(tmp / "f.age"), BackupFileError,
                                          "no key slots"),
    }


def _text(path: Path) -> Path:
    path.write_text("holiday photos\n")
    return path


def _plain_age(path: Path) -> Path:
    path.write_bytes(age.encrypt(b"hello", [age.X25519Identity.generate().to_recipient()]))
    return path


@pytest.fixture(scope="module")
def other_practice(source, backup, tmp_path_factory) -> Path:
    """The same archive and key slots, but encrypted to another practice's recipient."""
    stranger = age.X25519Identity.generate().to_recipient()
    return rewrite(backup, tmp_path_factory.mktemp("other") / "other.age", source.identity(),
                   lambda members: members, recipients=[stranger])


@pytest.mark.parametrize("case", ["cut inside a chunk", "cut at a chunk boundary",
                                  "header MAC flipped", "payload flipped in a chunk",
                                  "payload flipped in the last chunk",
                                  "another practice's recipient", "not a backup",
                                  "an age file without key slots"])
def test_a_bad_backup_file_gives_one_clear_error_and_changes_nothing(
        source, backup, other_practice, new, tmp_path, case):
    path, error, words = _bad_files(backup, tmp_path, other_practice)[case]
    before = snapshot(new.cfg.paths.data_dir)
    with pytest.raises(error, match=words) as raised:
        restore(new, path, source.recovery)
    assert "\n" not in str(raised.value) and path.name in str(raised.value)
    _unchanged(new, before)


@pytest.mark.parametrize(("opener", "error", "words"), [
    (age.X25519Identity.generate(), WrongPassphraseError, "does not open this backup"),
    (str(age.X25519Identity.generate()), WrongPassphraseError,
     "recovery key does not open this backup"),
    ("not a key", WrongPassphraseError, "not a recovery key"),
    ((USER, "wrong passphrase, sorry"), WrongPassphraseError, f"wrong passphrase for '{USER}'"),
    (("dr.nobody", PASSPHRASE), UnknownUserError, "no key slot for 'dr.nobody'"),
], ids=["a stranger's identity", "a stranger's recovery key", "not a key", "a wrong passphrase",
        "an unknown user"])  # fixed ids: both test processes must collect the same names
def test_a_wrong_secret_is_refused_in_words_and_changes_nothing(backup, new, opener, error, words):
    before = snapshot(new.cfg.paths.data_dir)
    with pytest.raises(error, match=words):
        restore(new, backup, opener)
    _unchanged(new, before)


def test_the_offline_backup_key_opens_a_backup_encrypted_to_it(tmp_path):
    offline = age.X25519Identity.generate()
    old = seed(fresh_device(tmp_path / "old", recipient=str(offline.to_recipient())))
    old.keys.lock()  # even a backup made while locked opens with the offline key
    path = back_up(old)
    new = fresh_device(tmp_path / "new")
    report = restore(new, path, offline)
    assert report.sessions == 3
    assert reopened(new)[1].open_slot(USER, PASSPHRASE)


# --- interrupted restores ------------------------------------------------------------


def test_a_failure_inside_extraction_leaves_the_data_and_no_staging(source, backup, new, tmp_path):
    # The damage is in the last chunk: the database is already staged when it is found.
    damaged = flip(backup, tmp_path / "late.age", -40)
    before = snapshot(new.cfg.paths.data_dir)
    with pytest.raises(BackupFileError):
        restore(new, damaged, source.recovery)
    _unchanged(new, before)


def test_a_restore_killed_between_staging_and_swap_is_cleaned_up_by_the_next_one(
        source, backup, new):
    data_dir = new.cfg.paths.data_dir
    staging = staging_dir(data_dir)
    staging.mkdir()
    restore_mod._extract(backup, source.recovery, staging)  # staged, then the power went
    assert (staging / "data" / "holdnote.db").exists()
    assert Storage(data_dir).count_sessions() == 0  # the device's data as it was
    report = restore(new, backup, source.recovery)
    assert report.sessions == 3 and not staging.exists()


# --- the command --------------------------------------------------------------------


def test_cli_restore_reads_the_secret_from_stdin_and_says_what_came_back(
        source, backup, new, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{source.recovery}\n"))
    code = cli.main(["--config", str(new.config_path), "restore", str(backup), "--recovery-key"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "3 sessions" in out.out and "log in as usual" in out.out
    assert source.recovery not in out.out + out.err


def test_cli_restore_with_a_wrong_passphrase_prints_one_line_and_fails(
        backup, new, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong passphrase, sorry\n"))
    code = cli.main(["--config", str(new.config_path), "restore", str(backup), "--user", USER])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("holdnote: wrong passphrase")


def test_cli_restore_refuses_a_secret_on_the_command_line(backup, new, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--config", str(new.config_path), "restore", str(backup),
                  "--recovery-key", "AGE-SECRET-KEY-1XYZ"])


def test_cli_restore_with_an_identity_file(source, backup, new, tmp_path, capsys):
    key = tmp_path / "offline-key.txt"
    key.write_text(f"# the practice key, kept offline\n{source.identity()}\n")
    code = cli.main(["--config", str(new.config_path), "restore", str(backup),
                     "--identity", str(key)])
    assert code == 0, capsys.readouterr().err
    assert Storage(new.cfg.paths.data_dir).count_sessions() == 3


def test_cli_restore_on_a_device_with_data_needs_replace(source, backup, tmp_path, monkeypatch,
                                                          capsys):
    busy = seed(fresh_device(tmp_path / "busy"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{source.recovery}\n"))
    args = ["--config", str(busy.config_path), "restore", str(backup), "--recovery-key"]
    assert cli.main(args) == 1
    assert "--replace" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{source.recovery}\n"))
    assert cli.main([*args, "--replace"]) == 0
    assert "previous data is kept in" in capsys.readouterr().out
