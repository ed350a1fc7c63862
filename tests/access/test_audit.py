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
    sql(storage, "UPDATE audit SET detail = 'edited' WHERE seq = 2")
    bad = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 1
    assert "entry 2" in bad.stderr
