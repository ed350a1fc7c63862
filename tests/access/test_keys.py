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
    TooManyAttemptsError,
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


def test_wrong_passphrase_changes_nothing_and_waits_without_sleeping(keystore, recovery_key,
                                                                     storage):
    keystore.lock()
    before = slots(storage)
    for _ in range(3):  # the free failures
        with pytest.raises(WrongPassphraseError, match="nothing was changed"):
            keystore.unlock(USER, "not the passphrase")
    # The next attempt is refused at once (no sleeping), however right it is.
    with pytest.raises(TooManyAttemptsError, match="wait"):
        keystore.unlock(USER, PASSPHRASE)
    assert not keystore.is_unlocked()
    assert slots(storage) == before


def test_success_resets_the_count(keystore, recovery_key):
    keystore.lock()
    for _ in range(2):
        with pytest.raises(WrongPassphraseError):
            keystore.unlock(USER, "not the passphrase")
    keystore.unlock(USER, PASSPHRASE)
    assert keystore.status().unlocked
    for _ in range(3):  # all free again
        with pytest.raises(WrongPassphraseError):
            keystore.unlock(USER, "wrong again")


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


# --- roles and who keeps the sessions ---------------------------------------------------


def _finished(storage, owner_id: int) -> int:
    """A finished recording of ``owner_id`` (only one may be recording at a time)."""
    from appliance.store.db import State

    session_id = storage.create_session(owner_id=owner_id).id
    storage.transition(session_id, State.RECORDED, ended_at=storage.now())
    return session_id


def _roles(keystore) -> dict[str, str]:
    return {u.username: u.role for u in keystore.users()}


def test_the_account_that_sets_the_device_up_is_the_admin(keystore, recovery_key):
    keystore.add_user("dr.chen", "another long passphrase", keystore.identity())
    assert _roles(keystore) == {USER: "admin", "dr.chen": "clinician"}


def test_the_last_admin_can_be_neither_removed_nor_demoted(keystore, recovery_key):
    keystore.add_user("dr.chen", "another long passphrase", keystore.identity())
    with pytest.raises(KeysError, match="only admin"):
        keystore.remove_user(USER, heir="dr.chen")
    with pytest.raises(KeysError, match="only admin"):
        keystore.set_role(USER, "clinician")
    assert keystore.set_role("dr.chen", "admin")
    assert keystore.set_role(USER, "clinician")
    assert _roles(keystore) == {USER: "clinician", "dr.chen": "admin"}
    with pytest.raises(KeysError, match="a role is one of"):
        keystore.set_role(USER, "root")


def test_a_removed_clinicians_sessions_go_to_a_colleague_never_to_nobody(keystore,
                                                                         recovery_key, storage):
    from appliance.access.keys import viewer

    keystore.add_user("dr.chen", "another long passphrase", keystore.identity())
    keystore.add_user("dr.okafor", "a third long passphrase", keystore.identity())
    chen, okafor = viewer(storage, "dr.chen"), viewer(storage, "dr.okafor")
    first, second = _finished(storage, chen.user_id), _finished(storage, chen.user_id)
    storage.share(first, okafor.user_id, "dr.chen")
    assert keystore.remove_user("dr.chen", heir="dr.okafor") == 2
    assert {storage.get_session(i).owner_id for i in (first, second)} == {okafor.user_id}
    assert storage.shared_with(first) == []  # the heir owns it now, no share needed
    # Without an heir (the command line), the sessions go to the admin.
    third = _finished(storage, okafor.user_id)
    keystore.remove_user("dr.okafor")
    assert storage.get_session(third).owner_id == viewer(storage, USER).user_id


def test_recovery_keeps_the_account_its_role_and_its_sessions(keystore, recovery_key, storage):
    from appliance.access.keys import viewer

    before = viewer(storage, USER)
    session = storage.create_session(owner_id=before.user_id).id
    keystore.lock()
    keystore.recover(recovery_key, USER, "remembered this time")
    after = viewer(storage, USER)
    assert after == before and after.admin
    assert storage.get_session(session).owner_id == before.user_id


def test_a_new_recording_goes_to_the_rooms_clinician(keystore, recovery_key, storage):
    from appliance.access.keys import room_owner, viewer

    me = viewer(storage, USER).user_id
    assert room_owner(storage, None) == me  # one account: its sessions are its own
    keystore.add_user("dr.chen", "another long passphrase", keystore.identity())
    assert room_owner(storage, None) is None  # several: unassigned until claimed
    assert room_owner(storage, "dr.chen") == viewer(storage, "dr.chen").user_id
    assert room_owner(storage, "dr.nobody") is None
