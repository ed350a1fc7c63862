"""The hash-chained audit log: every edit, removal or reordering is found."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance.access.audit import AuditLog
from tests.conftest import REPO


@pytest.fixture
def filled(audit):
    for n in range(1, 7):
        audit.append("dr.rivera", "session.view", session_id=n, source="192.168.1.20")
    return audit


def test_intact_log_verifies(filled):
    verdict = filled.verify()
    assert verdict.ok and verdict.entries == 6


def test_empty_log_verifies(audit):
    assert audit.verify().ok


def test_entries_are_chained(filled):
    entries = filled.entries(newest_first=False)
    for before, after in zip(entries, entries[1:]):
        assert after.prev_hash == before.hash
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]


def sql(storage, statement, *args):
    with storage.connect() as conn:
        conn.execute(statement, args)


def test_altered_entry_is_reported(filled, storage):
    sql(storage, "UPDATE audit SET actor = 'someone.else' WHERE seq = 3")
    verdict = filled.verify()
    assert not verdict.ok
    assert verdict.first_bad_seq == 3
    assert "altered" in verdict.reason


def test_removed_entry_is_reported(filled, storage):
    sql(storage, "DELETE FROM audit WHERE seq = 4")
    verdict = filled.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 4)


def test_renumbered_removal_is_reported(filled, storage):
    # Hide a removal by renumbering the later entries: the chain link breaks.
    sql(storage, "DELETE FROM audit WHERE seq = 2")
    for seq in range(3, 7):
        sql(storage, "UPDATE audit SET seq = ? WHERE seq = ?", seq - 1, seq)
    verdict = filled.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)


def test_reordered_entries_are_reported(filled, storage):
    sql(storage, "UPDATE audit SET seq = 100 WHERE seq = 2")
    sql(storage, "UPDATE audit SET seq = 2 WHERE seq = 5")
    sql(storage, "UPDATE audit SET seq = 5 WHERE seq = 100")
    verdict = filled.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)


def test_truncated_tail_is_reported(filled, storage):
    sql(storage, "DELETE FROM audit WHERE seq >= 5")
    verdict = filled.verify()
    assert not verdict.ok
    assert verdict.first_bad_seq == 5
    assert "removed" in verdict.reason


def test_a_cut_tail_stays_reported_after_the_next_login(filled, storage):
    sql(storage, "DELETE FROM audit WHERE seq > 6 - 3")
    filled.append("dr.rivera", "login.success", source="192.168.1.20")  # an ordinary login
    verdict = filled.verify()
    assert not verdict.ok
    assert "entries 4 to 6 were removed" in verdict.reason
    # The break is an ordinary chained entry, written before the login's own.
    recorded = filled.entries(limit=2)
    assert [e.action for e in recorded] == ["login.success", "audit.break"]
    for _ in range(5):  # and it is reported for ever after
        filled.append("dr.rivera", "session.view", session_id=1)
    assert not filled.verify().ok
    assert filled.verify().first_bad_seq == recorded[1].seq


def test_an_emptied_log_does_not_verify(filled, storage):
    sql(storage, "DELETE FROM audit")
    sql(storage, "DELETE FROM settings WHERE key = 'audit_head'")
    verdict = filled.verify()
    assert not verdict.ok and "every entry was removed" in verdict.reason
    filled.append("dr.rivera", "login.success")
    verdict = filled.verify()
    assert not verdict.ok and "every entry was removed" in verdict.reason


def test_an_emptied_log_beside_accounts_does_not_verify(audit, keystore, recovery_key, storage):
    """Entries and both settings gone: the accounts setup created still give it away."""
    assert not audit.verify().ok
    assert "accounts exist" in audit.verify().reason


def test_a_new_device_starts_its_log_without_a_break(audit):
    audit.append("cli", "keys.init")
    assert audit.verify().ok
    assert [e.action for e in audit.entries()] == ["keys.init"]


@pytest.mark.parametrize("head", ["garbage", "", "7:" + "0" * 64 + "x", "999999999999999999999:ab"])
def test_a_garbage_head_gives_one_clear_message(filled, storage, head):
    sql(storage, "UPDATE settings SET value = ? WHERE key = 'audit_head'", head)
    verdict = filled.verify()
    assert not verdict.ok and "audit_head" in verdict.reason and "unreadable" in verdict.reason
    filled.append("dr.rivera", "login.success")  # appending records it, and does not crash
    assert [e.action for e in filled.entries(limit=2)] == ["login.success", "audit.break"]


def test_appends_continue_the_chain_after_reopen(filled, storage):
    again = AuditLog(type(storage)(storage.data_dir))
    again.append("holdnote", "device.lock")
    assert again.verify().ok and again.verify().entries == 7


def test_cli_verify_exit_codes(filled, storage, cfg, tmp_path):
    config_file = tmp_path / "holdnote.toml"
    config_file.write_text(f'[paths]\ndata_dir = "{cfg.paths.data_dir}"\n'
                           f'runtime_dir = "{cfg.paths.runtime_dir}"\n')
    command = [sys.executable, "-m", "appliance.app.cli", "--config", str(config_file),
               "audit", "verify"]
    ok = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "intact: 6 entries" in ok.stdout
    sql(storage, "UPDATE settings SET value = 'garbage' WHERE key = 'audit_head'")
    garbage = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert garbage.returncode == 1
    assert "audit_head" in garbage.stderr and "Traceback" not in garbage.stderr
    sql(storage, "UPDATE audit SET detail = 'edited' WHERE seq = 2")
    bad = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 1
    assert "entry 2" in bad.stderr
