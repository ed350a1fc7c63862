"""Key slots: init, unlock/lock, users, passphrase changes, recovery, failures."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from appliance import age
from appliance.errors import (
    AlreadyInitializedError,
    DeviceLockedError,
    KeysError,
    NotInitializedError,
    UnknownUserError,
    UserExistsError,
    WeakPassphraseError,
    WrongPassphraseError,
)
from tests.conftest import PASSPHRASE, REPO, USER, need_tool


def slots(storage) -> dict:
    with storage.connect() as conn:
        return {r["id"]: bytes(r["slot_enc"]) for r in conn.execute("SELECT * FROM key_slots")}


def test_init_unlocks_and_recording_needs_only_the_public_key(keystore, recovery_key, storage):
    assert keystore.is_unlocked()
    identity = keystore.identity()
    assert str(identity.to_recipient()) == str(keystore.recipient())
    # The recorder's view: encrypt with the stored public recipient only.
    blob = age.encrypt(b"session audio", [keystore.recipient()])
    assert age.decrypt(blob, [identity]) == b"session audio"
    assert recovery_key.startswith("AGE-SECRET-KEY-1")


def test_identity_is_never_stored_in_the_clear(keystore, recovery_key, storage):
    secret = str(keystore.identity()).encode()
    for path in storage.data_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
            assert secret.lower() not in path.read_bytes(), path
    assert recovery_key.encode() not in storage.db_path.read_bytes()


def test_runtime_identity_is_owner_only(keystore, recovery_key):
    assert stat.S_IMODE(keystore.identity_path.stat().st_mode) == 0o600


def test_lock_then_unlock(keystore, recovery_key):
    assert keystore.lock()
    assert not keystore.is_unlocked()
    with pytest.raises(DeviceLockedError, match="log in"):
        keystore.identity()
    keystore.unlock(USER, PASSPHRASE)
    assert keystore.is_unlocked()


def test_wrong_passphrase_changes_nothing_and_slows_down(keystore, recovery_key, storage, sleeps):
    keystore.lock()
    before = slots(storage)
    for _ in range(5):
        with pytest.raises(WrongPassphraseError, match="nothing was changed"):
            keystore.unlock(USER, "not the passphrase")
    assert not keystore.is_unlocked()
    assert slots(storage) == before
    # Two free attempts, then each attempt waits twice as long as the last.
    assert sleeps == [1.0, 2.0]
    keystore.unlock(USER, PASSPHRASE)
    assert keystore.status().unlocked
    assert sleeps == [1.0, 2.0, 4.0]
    # Success resets the count: the next mistake costs no wait.
    with pytest.raises(WrongPassphraseError):
        keystore.unlock(USER, "wrong again")
    assert sleeps == [1.0, 2.0, 4.0]


def test_slot_opens_with_stock_age_format(keystore, recovery_key, storage):
    """A slot is a plain age scrypt file: the practice can always recover with `age`."""
    with storage.connect() as conn:
        blob = conn.execute("SELECT slot_enc FROM key_slots WHERE kind='passphrase'").fetchone()[0]
    plain = age.decrypt(blob, [age.ScryptIdentity(PASSPHRASE)])
    assert str(keystore.identity()) in plain.decode()


def test_second_user_and_removal(keystore, recovery_key):
    keystore.add_user("dr.chen", "another long passphrase", keystore.identity())
    keystore.lock()
    keystore.unlock("dr.chen", "another long passphrase")
    assert keystore.status().users == (USER, "dr.chen")
    keystore.remove_user("dr.chen")
    with pytest.raises(UnknownUserError):
        keystore.unlock("dr.chen", "another long passphrase")
    with pytest.raises(KeysError, match="only user"):
        keystore.remove_user(USER)


def test_duplicate_and_weak(keystore, recovery_key):
    with pytest.raises(UserExistsError):
        keystore.add_user(USER, "some other passphrase", keystore.identity())
    with pytest.raises(WeakPassphraseError, match="at least"):
        keystore.add_user("dr.short", "short", keystore.identity())


def test_add_user_needs_this_devices_identity(keystore, recovery_key):
    stranger = age.X25519Identity.generate()
    with pytest.raises(WrongPassphraseError):
        keystore.add_user("intruder", "a long passphrase here", stranger)


def test_change_passphrase(keystore, recovery_key, storage):
    with pytest.raises(WrongPassphraseError):
        keystore.change_passphrase(USER, "wrong old passphrase", "brand new passphrase")
    keystore.change_passphrase(USER, PASSPHRASE, "brand new passphrase")
    keystore.lock()
    with pytest.raises(WrongPassphraseError):
        keystore.unlock(USER, PASSPHRASE)
    keystore.unlock(USER, "brand new passphrase")
    assert keystore.verify_password(USER, "brand new passphrase")
    assert not keystore.verify_password(USER, PASSPHRASE)


def test_recovery_key_opens_and_resets_a_forgotten_passphrase(keystore, recovery_key):
    keystore.lock()
    keystore.recover(recovery_key, USER, "remembered this time")
    assert keystore.is_unlocked()
    keystore.lock()
    keystore.unlock(USER, "remembered this time")
    keystore.lock()
    keystore.unlock_with_recovery(recovery_key)
    assert keystore.is_unlocked()


def test_wrong_or_malformed_recovery_key(keystore, recovery_key):
    keystore.lock()
    with pytest.raises(WrongPassphraseError, match="does not belong"):
        keystore.unlock_with_recovery(str(age.X25519Identity.generate()))
    with pytest.raises(WrongPassphraseError, match="not a recovery key"):
        keystore.unlock_with_recovery("correct horse")
    assert not keystore.is_unlocked()


def test_not_initialized_and_double_init(keystore):
    with pytest.raises(NotInitializedError, match="setup"):
        keystore.recipient()
    keystore.init(USER, PASSPHRASE)
    with pytest.raises(AlreadyInitializedError):
        keystore.init("dr.other", PASSPHRASE)


def test_password_hash_is_memory_hard(keystore, recovery_key, storage):
    with storage.connect() as conn:
        hashed = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert hashed.startswith("$argon2id$")
    assert not keystore.verify_password("nobody", PASSPHRASE)


def test_cli_init_unlock_lock_status(tmp_path):
    """The `holdnote keys` commands, scripted through stdin as IT would."""
    config_file = tmp_path / "holdnote.toml"
    config_file.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\nruntime_dir = "{tmp_path / "run"}"\n'
        "[security]\nscrypt_work_factor = 10\n"
    )

    def holdnote(*args, stdin=""):
        return subprocess.run(
            [sys.executable, "-m", "appliance.app.cli", "--config", str(config_file), "keys", *args],
            input=stdin, capture_output=True, text=True, cwd=REPO, timeout=60,
        )

    made = holdnote("init", USER, stdin=PASSPHRASE + "\n")
    assert made.returncode == 0, made.stderr
    recovery = [w for w in made.stdout.split() if w.startswith("AGE-SECRET-KEY-1")]
    assert len(recovery) == 1
    assert holdnote("lock").returncode == 0
    assert '"unlocked": false' in holdnote("status", "--json").stdout
    wrong = holdnote("unlock", USER, stdin="nope nope nope\n")
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    assert holdnote("unlock", USER, stdin=PASSPHRASE + "\n").returncode == 0
    assert '"unlocked": true' in holdnote("status", "--json").stdout
    assert os.path.exists(tmp_path / "run" / "identity.txt")


def test_unlocked_identity_decrypts_with_stock_age(keystore, recovery_key, tmp_path):
    age_cli = need_tool("age")
    blob = age.encrypt(b"readable with standard tools", [keystore.recipient()])
    (tmp_path / "f.age").write_bytes(blob)
    out = subprocess.run([age_cli, "-d", "-i", str(keystore.identity_path), str(tmp_path / "f.age")],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"readable with standard tools"


def test_every_process_uses_the_configured_work_factor(tmp_path):
    from appliance.access.keys import KeyStore
    from appliance.store.db import Storage
    from appliance.transcription.job import Job
    from tests.conftest import make_config

    cfg = make_config(tmp_path, security={"scrypt_work_factor": 11})
    storage = Storage(cfg.paths.data_dir)
    KeyStore.for_config(cfg, storage).init(USER, PASSPHRASE)
    # The passphrase slot's scrypt stanza carries the work factor it was sealed with.
    assert all(b"-> scrypt " in blob and blob.split(b"\n")[1].split()[-1] == b"11"
               for blob in slots(storage).values() if b"-> scrypt " in blob)
    assert any(b"-> scrypt " in blob for blob in slots(storage).values())
    assert Job(cfg).keys.work_factor == 11
