"""A seeded device and its backup, for the verify and restore tests.

Three sessions with tiny recordings (one spans two age chunks), a signed note
with an addendum, two clinicians, audit entries, a TLS pair and the
configuration file: written by the real :func:`appliance.backup.make_backup`.
Also the tools that make bad backups from a good one with real components
(re-encrypting a changed archive, flipping bytes, cutting files short).
"""

from __future__ import annotations

import io
import os
import sqlite3
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import age
from appliance import config as config_mod
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.backup import make_backup, slots
from appliance.store.db import Storage, write_note
from appliance.store.lifecycle import State
from tests.conftest import PASSPHRASE, USER, make_config

COLLEAGUE, COLLEAGUE_PASSPHRASE = "dr.chen", "another long passphrase"
NOTE = b"Client reports better sleep; plan unchanged."
ADDENDUM = b"Addendum: phoned on Friday."
CERT, KEY = b"-----BEGIN CERTIFICATE-----\nfake\n", b"-----BEGIN PRIVATE KEY-----\nfake\n"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """A clock that moves a second each time it is read."""

    def __init__(self, start: datetime = START):
        self.moment = start

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@dataclass
class Device:
    """A device's configuration, storage and keys, and where its config file is."""

    cfg: config_mod.Config
    storage: Storage
    keys: KeyStore
    config_path: Path
    recovery: str = ""

    def identity(self) -> age.X25519Identity:
        """The practice identity, opened with the first clinician's passphrase."""
        return self.keys.open_slot(USER, PASSPHRASE)


def fresh_device(root: Path, **backup: str) -> Device:
    """A freshly installed device under ``root``: an empty database, a models folder."""
    target = root / "target"
    target.mkdir(parents=True, exist_ok=True)
    cfg = make_config(root, backup={"target_dir": str(target), "require_mount": False,
                                    "margin_mb": 0, **backup})
    config_path = root / "holdnote.toml"
    config_path.write_text(config_mod.to_toml(cfg))
    storage = Storage(cfg.paths.data_dir, Clock())
    models = cfg.paths.data_dir / "models"
    models.mkdir()
    (models / "tiny.bin").write_bytes(b"model weights")
    return Device(cfg, storage, KeyStore(storage, cfg.paths.runtime_dir, work_factor=10),
                  config_path)


def seed(device: Device) -> Device:
    """Give ``device`` clinicians, three sessions with recordings, a signed note, TLS."""
    keys, storage = device.keys, device.storage
    device.recovery = keys.init(USER, PASSPHRASE)
    keys.add_user(COLLEAGUE, COLLEAGUE_PASSPHRASE, keys.identity())
    audit = AuditLog(storage)
    audit.append(USER, "login", source="web")
    recipient = keys.recipient()
    for n in range(3):
        session = storage.create_session(owner_id=1)
        assert session.audio_path is not None
        audio = bytes([n]) * (70_000 if n == 0 else 3_000)  # the first spans two chunks
        session.audio_path.write_bytes(age.encrypt(audio, [recipient]))
        storage.transition(session.id, State.RECORDED)
        audit.append("recorder", "recording.stop", session_id=session.id)
    storage.save_note(1, age.encrypt(b"draft", [recipient]), USER)
    with storage.connect() as conn:
        write_note(conn, 1, age.encrypt(NOTE, [recipient]), USER, storage.now(), signed=True)
    storage.add_addendum(1, age.encrypt(ADDENDUM, [recipient]), USER)
    audit.append(USER, "note.sign", session_id=1)
    device.cfg.web.tls_cert.parent.mkdir(parents=True, exist_ok=True)
    device.cfg.web.tls_cert.write_bytes(CERT)
    device.cfg.web.tls_key.write_bytes(KEY)
    return device


def back_up(device: Device) -> Path:
    """A backup of ``device`` made by the real writer (its config file included)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(config_mod.ENV_VAR, str(device.config_path))
        record = make_backup(device.cfg, device.storage, device.keys)
    return record.path


def flip(source: Path, dest: Path, offset: int) -> Path:
    """A copy of ``source`` with the byte at ``offset`` (negative: from the end) changed."""
    data = bytearray(source.read_bytes())
    data[offset] ^= 0x01
    dest.write_bytes(bytes(data))
    return dest


def cut(source: Path, dest: Path, size: int) -> Path:
    """A copy of the first ``size`` bytes of ``source``."""
    dest.write_bytes(source.read_bytes()[:size])
    return dest


def header_size(path: Path) -> int:
    """Where the payload begins: just after the header's MAC line."""
    data = path.read_bytes()
    return data.index(b"\n", data.index(b"\n--- ") + 1) + 1


Member = tuple[tarfile.TarInfo, bytes]


def rewrite(source: Path, dest: Path, identity: age.X25519Identity,
            change: Callable[[list[Member]], list[Member]],
            recipients: list | None = None) -> Path:
    """Re-encrypt ``source``'s archive after ``change`` edited its members.

    The result keeps the original key slots and, unless ``recipients`` is
    given, the practice recipient: a backup as the writer could have made it.
    """
    stanzas = slots.header_stanzas(source)
    key_slots = slots.read_slots(stanzas)
    with age.StreamReader(source, [identity]) as reader, \
            tarfile.open(fileobj=reader, mode="r|") as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar]  # type: ignore[union-attr]
    members = change(members)
    targets = recipients or [age.X25519Recipient.from_str(key_slots.recipient)]
    out = io.BytesIO()
    with age.StreamWriter(out, [*targets, slots.SlotsRecipient(key_slots)]) as writer, \
            tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest.write_bytes(out.getvalue())
    return dest


def change_db(members: list[Member], sql: str, tmp: Path) -> list[Member]:
    """The members with ``sql`` run on the database snapshot (to break it on purpose)."""
    result = []
    for info, data in members:
        if info.name == "holdnote.db":
            path = tmp / f"edit-{os.getpid()}.db"
            path.write_bytes(data)
            conn = sqlite3.connect(path)
            conn.executescript(sql)
            conn.close()
            data = path.read_bytes()
            path.unlink()
        result.append((info, data))
    return result


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content: to show nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}
