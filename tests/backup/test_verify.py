"""Verify (appliance/backup/verify.py, reader.py): structure without a key, and
with the practice key full decryption, the manifest, the database's integrity
and its audit chain. Each damaged file gets one sentence naming it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from appliance import age
from appliance.backup.verify import verify_backup
from appliance.errors import BackupFileError
from tests.backup.device import (
    Device,
    back_up,
    change_db,
    cut,
    flip,
    fresh_device,
    header_size,
    rewrite,
    seed,
)
from tests.conftest import need_tool


@pytest.fixture(scope="module")
def device(tmp_path_factory) -> Device:
    """A seeded device (three sessions, two clinicians)."""
    return seed(fresh_device(tmp_path_factory.mktemp("device")))


@pytest.fixture(scope="module")
def backup(device) -> Path:
    """Its backup, made by the real writer."""
    return back_up(device)


@pytest.fixture(scope="module")
def identity(device) -> age.X25519Identity:
    """The practice identity, as an unlocked device has it."""
    return device.identity()


# --- without a key: structure ------------------------------------------------------


def test_without_a_key_only_the_structure_is_checked_and_the_report_says_so(device, backup):
    report = verify_backup(device.cfg, backup)
    assert not report.full and report.size_bytes == backup.stat().st_size
    assert "needs the device unlocked" in report.note
    assert report.sessions is None


@pytest.mark.parametrize(("make", "words"), [
    (lambda b, t: cut(b, t / "a.age", header_size(b) + 16 + 65552 + 5), "cut short"),
    (lambda b, t: cut(b, t / "b.age", 40), "cut short|not a readable"),
    (lambda b, t: _write(t / "c.age", b"PK\x03\x04 a zip file"), "not an age file"),
    (lambda b, t: _write(t / "d.age", age.encrypt(b"x", [_stranger()])), "no key slots"),
])
def test_without_a_key_a_file_that_is_not_a_whole_backup_is_named(device, backup, tmp_path,
                                                                   make, words):
    path = make(backup, tmp_path)
    with pytest.raises(BackupFileError, match=words) as raised:
        verify_backup(device.cfg, path)
    assert str(raised.value).startswith(f"{path.name}: ")


def test_a_backup_of_another_practice_is_named_on_this_device(backup, tmp_path):
    other = seed(fresh_device(tmp_path / "other"))
    with pytest.raises(BackupFileError, match="encrypted to another practice"):
        verify_backup(other.cfg, backup)


def test_a_missing_file_is_named(device, tmp_path):
    with pytest.raises(BackupFileError, match="no such backup file"):
        verify_backup(device.cfg, tmp_path / "holdnote-backup-20260101T000000Z.age")


# --- with the key: everything -------------------------------------------------------


def test_with_the_key_every_chunk_the_manifest_database_and_audit_chain_are_checked(
        device, backup, identity):
    report = verify_backup(device.cfg, backup, identity)
    assert report.full and not report.note
    assert (report.sessions, report.recordings) == (3, 3)
    assert report.audit_entries == 5  # login, three recordings, the signature
    assert report.created_at and report.created_at.startswith("2026-")


def test_an_altered_payload_passes_the_structure_check_but_not_the_full_one(
        device, backup, identity, tmp_path):
    altered = flip(backup, tmp_path / "altered.age", header_size(backup) + 16 + 3000)
    assert not verify_backup(device.cfg, altered).full  # no key: it cannot tell
    with pytest.raises(BackupFileError, match="altered or damaged"):
        verify_backup(device.cfg, altered, identity)


def test_an_altered_header_is_caught_with_the_key(device, backup, identity, tmp_path):
    # Another valid base64 letter inside the header's MAC: flipping a bit could make an
    # invalid one ("not base64"), which a real alteration need not.
    data = bytearray(backup.read_bytes())
    at = header_size(backup) - 3
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    altered = tmp_path / "header.age"
    altered.write_bytes(bytes(data))
    with pytest.raises(BackupFileError, match="header was altered"):
        verify_backup(device.cfg, altered, identity)


def _drop_recording(members):
    return [m for m in members if m[0].name != "recordings/000002.wav.age"]


def _add_member(name: str):
    def change(members):
        info = tarfile.TarInfo(name)
        return [*members, (info, b"root::0:0::/root:/bin/sh\n")]
    return change


@pytest.mark.parametrize(("change", "words"), [
    (_drop_recording, r"does not match its manifest \(missing: recordings/000002.wav.age"),
    (_add_member("../../etc/passwd"), "'../../etc/passwd', which no Holdnote backup has"),
    (_add_member("recordings/x/../../y.age"), "which no Holdnote backup has"),
    (lambda m: m[1:], "does not start with MANIFEST.json"),
])
def test_an_archive_that_is_not_what_its_manifest_says_is_refused(
        device, backup, identity, tmp_path, change, words):
    bad = rewrite(backup, tmp_path / "bad.age", identity, change)
    with pytest.raises(BackupFileError, match=words):
        verify_backup(device.cfg, bad, identity)


@pytest.mark.parametrize(("sql", "words"), [
    ("UPDATE audit SET detail = 'edited' WHERE seq = 2;",
     "audit log inside does not verify at entry 2: entry 2 was altered"),
    ("DELETE FROM audit WHERE seq = 5;", "audit log inside does not verify"),
    ("PRAGMA foreign_keys = OFF; DELETE FROM sessions WHERE id = 3;",
     "holds 2 sessions, its manifest says 3"),
    ("PRAGMA user_version = 9999;", "made by a newer Holdnote"),
])
def test_a_database_snapshot_that_does_not_check_out_is_refused(
        device, backup, identity, tmp_path, sql, words):
    bad = rewrite(backup, tmp_path / "db.age", identity,
                  lambda members: change_db(members, sql, tmp_path))
    with pytest.raises(BackupFileError, match=words):
        verify_backup(device.cfg, bad, identity)


def test_a_damaged_database_snapshot_is_refused(device, backup, identity, tmp_path):
    def scramble(members):
        return [(i, d[:4096] + bytes(len(d) - 4096) if i.name == "holdnote.db" else d)
                for i, d in members]
    bad = rewrite(backup, tmp_path / "damaged.age", identity, scramble)
    with pytest.raises(BackupFileError, match="database (is damaged|cannot be opened)"):
        verify_backup(device.cfg, bad, identity)


def test_the_stock_age_cli_opens_a_backup_and_finds_the_manifest_first(backup, identity,
                                                                       tmp_path):
    tool = need_tool("age")
    key = tmp_path / "key.txt"
    key.write_text(f"{identity}\n")
    plain = subprocess.run([tool, "-d", "-i", str(key), str(backup)], check=True,
                           capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r|") as tar:
        names = [info.name for info in tar]
    assert names[0] == "MANIFEST.json" and "holdnote.db" in names


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _stranger() -> age.X25519Recipient:
    return age.X25519Identity.generate().to_recipient()
