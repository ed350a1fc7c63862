"""The data directory and database: permissions, migrations, sessions, deletion."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone

import pytest

from appliance.errors import InvalidStateError, SessionNotFoundError, StorageError
from appliance.storage import MIGRATIONS, State, Storage, atomic_write


def test_data_directory_is_private(storage):
    assert stat.S_IMODE(storage.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(storage.db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(storage.recordings_dir.stat().st_mode) == 0o700


def test_wal_and_secure_delete_are_on(storage):
    with storage.connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_reopening_keeps_data_and_schema_version(storage):
    session = storage.create_session()
    again = Storage(storage.data_dir)
    assert again.get_session(session.id).state is State.RECORDING
    conn = sqlite3.connect(storage.db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_corrupt_database_is_a_clear_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "holdnote.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot be opened"):
        Storage(tmp_path / "data")


def test_session_life_cycle(storage):
    session = storage.create_session(channels=2, sample_rate=16000)
    assert session.audio_path == storage.recording_path(session.id)
    storage.add_bookmark(session.id, 12.345)
    storage.add_bookmark(session.id, 60)
    done = storage.transition(session.id, State.RECORDED, (State.RECORDING,), duration_s=75.5)
    assert done.state is State.RECORDED
    assert done.bookmarks == (12.35, 60)
    assert done.duration_s == 75.5
    assert done.channels == 2


def test_transition_refuses_the_wrong_state(storage):
    session = storage.create_session()
    with pytest.raises(InvalidStateError, match="is recording, cannot become draft"):
        storage.transition(session.id, State.DRAFT, (State.TRANSCRIBING,))
    assert storage.get_session(session.id).state is State.RECORDING


def test_missing_session_is_not_found(storage):
    with pytest.raises(SessionNotFoundError):
        storage.get_session(999)
    with pytest.raises(SessionNotFoundError):
        storage.update_session(999, progress=0.5)
    with pytest.raises(LookupError):
        storage.add_bookmark(999, 1.0)


def test_list_filters_and_order(tmp_path):
    clock = [datetime(2026, 11, 1, 9, tzinfo=timezone.utc)]
    storage = Storage(tmp_path / "d", now=lambda: clock[0])
    ids = []
    for day in range(5):
        clock[0] = datetime(2026, 11, 1 + day, 9, tzinfo=timezone.utc)
        ids.append(storage.create_session().id)
    storage.transition(ids[1], State.RECORDED, (State.RECORDING,))
    newest = storage.list_sessions()
    assert [s.id for s in newest] == ids[::-1]
    oldest = storage.list_sessions(oldest_first=True, limit=2)
    assert [s.id for s in oldest] == ids[:2]
    recorded = storage.list_sessions(states=(State.RECORDED,))
    assert [s.id for s in recorded] == [ids[1]]
    window = storage.list_sessions(since=datetime(2026, 11, 2, tzinfo=timezone.utc),
                                   until=datetime(2026, 11, 4, tzinfo=timezone.utc))
    assert sorted(s.id for s in window) == ids[1:3]
    assert storage.count_sessions() == 5
    assert storage.count_sessions(states=(State.RECORDED,)) == 1


def test_signed_note_cannot_be_overwritten(storage):
    session = storage.create_session()
    storage.save_note(session.id, b"age-ciphertext-1", author="dr.rivera")
    storage.save_note(session.id, b"age-ciphertext-2", author="dr.rivera")
    assert storage.load_note(session.id)["note_enc"] == b"age-ciphertext-2"
    with storage.connect() as conn:
        conn.execute("UPDATE notes SET signed_at = '2026-11-21T10:00:00+00:00' "
                     "WHERE session_id = ?", (session.id,))
    with pytest.raises(InvalidStateError, match="addendum"):
        storage.save_note(session.id, b"age-ciphertext-3")
    assert storage.load_note(session.id)["note_enc"] == b"age-ciphertext-2"


def test_delete_session_removes_files_and_rows(storage):
    session = storage.create_session()
    session.audio_path.write_bytes(b"encrypted audio")
    storage.save_transcript(session.id, b"transcript")
    storage.save_note(session.id, b"note")
    storage.delete_session(session.id)
    assert not session.audio_path.exists()
    with pytest.raises(SessionNotFoundError):
        storage.get_session(session.id)
    with storage.connect() as conn:
        for table in ("transcripts", "notes"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_deleted_text_is_not_left_in_the_database_file(storage):
    session = storage.create_session()
    marker = b"UNIQUE-MARKER-" * 50
    storage.save_transcript(session.id, marker)
    # Another process (a web worker, say) holds the database open, so SQLite
    # does not fold the write-ahead log back in on its own.
    other = sqlite3.connect(storage.db_path)
    other.execute("SELECT COUNT(*) FROM sessions").fetchone()
    storage.delete_session(session.id)
    raw = storage.db_path.read_bytes()
    wal = storage.db_path.with_name(storage.db_path.name + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    other.close()
    assert b"UNIQUE-MARKER-" not in raw


def test_delete_audio_keeps_the_session(storage):
    session = storage.create_session()
    session.audio_path.write_bytes(b"x")
    storage.delete_audio(session.id)
    kept = storage.get_session(session.id)
    assert not session.audio_path.exists()
    assert kept.audio_deleted_at is not None


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "file"
    atomic_write(target, b"old")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # fails mid-write, after the temporary file exists
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_settings_round_trip_and_removal(storage):
    assert storage.get_setting("x", "default") == "default"
    storage.set_setting("x", "1")
    storage.set_setting("x", "2")
    assert storage.get_setting("x") == "2"
    storage.set_setting("x", None)
    assert storage.get_setting("x") is None


def test_update_rejects_unknown_columns(storage):
    session = storage.create_session()
    with pytest.raises(ValueError, match="not session columns"):
        storage.update_session(session.id, started_at="yesterday; DROP TABLE sessions")


def test_timestamps_come_from_the_injected_clock(tmp_path):
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))
    storage = Storage(tmp_path / "d", now=lambda: moment)
    session = storage.create_session()
    assert session.started_at == moment


def test_services_starting_together_migrate_once(tmp_path):
    """The recorder and the web workers open a fresh database at the same moment."""
    import threading

    errors: list[Exception] = []
    barrier = threading.Barrier(6)

    def open_it():
        barrier.wait()
        try:
            Storage(tmp_path / "fresh")
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert Storage(tmp_path / "fresh").count_sessions() == 0
