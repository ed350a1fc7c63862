"""The data directory and database: permissions, migrations, sessions, deletion."""

from __future__ import annotations

import inspect
import os
import re
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance.errors import (
    IllegalTransitionError,
    InvalidStateError,
    SessionNotFoundError,
    StorageError,
)
from appliance.fsutil import atomic_write
from appliance.store import lifecycle
from appliance.store.db import (
    MIGRATIONS,
    PENDING_STATES,
    TRANSITIONS,
    State,
    Storage,
    apply_transition,
)
from tests.support.lifecycle import walk_to


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
    done = storage.transition(session.id, State.RECORDED, duration_s=75.5)
    assert done.state is State.RECORDED
    assert done.bookmarks == (12.35, 60)
    assert done.duration_s == 75.5
    assert done.channels == 2


def test_transition_refuses_the_wrong_state(storage):
    session = storage.create_session()
    with pytest.raises(InvalidStateError, match="is recording, cannot become draft"):
        storage.transition(session.id, State.DRAFT)
    assert storage.get_session(session.id).state is State.RECORDING


# --- the lifecycle: one table, one writer -----------------------------------------------

# What the code does today, written out by hand so that a change to the table is a
# deliberate change here too: stop or recover a recording; recovery retrying itself;
# the overnight job taking, resuming, finishing or failing a session; a retry of a failed
# one; signing a draft.
EXPECTED = {
    State.RECORDING: {State.RECORDED, State.INTERRUPTED},
    State.RECORDED: {State.TRANSCRIBING},
    State.INTERRUPTED: {State.INTERRUPTED, State.TRANSCRIBING},
    State.TRANSCRIBING: {State.TRANSCRIBING, State.DRAFT, State.FAILED},
    State.FAILED: {State.TRANSCRIBING},
    State.DRAFT: {State.SIGNED},
    State.SIGNED: set(),
}
PAIRS = [(a, b) for a in State for b in State]


def session_in(storage: Storage, state: State) -> int:
    session_id = storage.create_session().id
    walk_to(storage, session_id, state)
    assert storage.get_session(session_id).state is state
    return session_id


def test_the_table_is_what_the_code_does():
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED
    assert TRANSITIONS is lifecycle.TRANSITIONS  # storage re-exports the one table


@pytest.mark.parametrize(("current", "to"), [p for p in PAIRS if p[1] in EXPECTED[p[0]]])
def test_every_allowed_transition_works(storage, current, to):
    session_id = session_in(storage, current)
    moved = storage.transition(session_id, to, error="why", progress=0.5)
    assert (moved.state, moved.error, moved.progress) == (to, "why", 0.5)


@pytest.mark.parametrize(("current", "to"), [p for p in PAIRS if p[1] not in EXPECTED[p[0]]])
def test_every_other_transition_is_refused_and_says_what_is_allowed(storage, current, to):
    session_id = session_in(storage, current)
    with pytest.raises(IllegalTransitionError) as refused:
        storage.transition(session_id, to, error="must not be written")
    error = refused.value
    assert (error.session_id, error.current, error.to) == (session_id, current, to)
    message = str(error)
    assert message.startswith(f"session {session_id} is {current}, cannot become {to}")
    for source in sorted(s for s in State if to in EXPECTED[s]):
        assert str(source) in message.split(":", 1)[1]
    assert all(str(onward) in message.split(";")[-1] for onward in EXPECTED[current])
    after = storage.get_session(session_id)
    assert (after.state, after.error) == (current, None)


def test_refusals_name_the_way_forward(storage):
    signed = session_in(storage, State.SIGNED)
    with pytest.raises(IllegalTransitionError, match=(
            f"session {signed} is signed, cannot become transcribing: only a recorded or "
            "interrupted or transcribing or failed session can; signed is final")):
        storage.transition(signed, State.TRANSCRIBING)
    recorded = session_in(storage, State.RECORDED)
    with pytest.raises(IllegalTransitionError, match=(
            "cannot become recording: no move leads to recording, sessions start there; "
            "from recorded it can become transcribing")):
        storage.transition(recorded, State.RECORDING)


def test_transition_of_a_missing_session_is_not_found(storage):
    with pytest.raises(SessionNotFoundError):
        storage.transition(999, State.RECORDED)


def test_state_is_not_a_column_to_update(storage):
    session = storage.create_session()
    with pytest.raises(ValueError, match="only through Storage.transition"):
        storage.update_session(session.id, state=State.SIGNED)
    assert storage.get_session(session.id).state is State.RECORDING


def test_pending_states_are_those_waiting_for_the_overnight_job():
    takes_up = {s for s in State if State.TRANSCRIBING in TRANSITIONS[s]}
    # A failed session waits for a person to ask again, not for the night run.
    assert set(PENDING_STATES) == takes_up - {State.FAILED}


# Writes of sessions.state in SQL text: "SET state = ?", "SET progress = ?, state = ?",
# and update_session(..., state=...). The owner builds its SET list from a dict.
# A case conceptualization's own state column (appliance/store/formulations.py) is not the session's.
STATE_WRITES = re.compile(
    r"(?<!UPDATE formulations )\bSET\b[^\"'\n]*?\bstate\s*=|update_session\([^)]*\bstate\s*=", re.I)
ROOT = Path(__file__).resolve().parents[2]


def test_state_writes_are_found_by_the_guard():
    assert STATE_WRITES.search('conn.execute("UPDATE sessions SET state = ? WHERE id = ?"')
    assert STATE_WRITES.search("UPDATE sessions SET progress = 1, state = 'draft'")
    assert STATE_WRITES.search("storage.update_session(7, error=None, state=State.DRAFT)")
    assert not STATE_WRITES.search("UPDATE formulations SET state = 'queued' WHERE client_id = ?")
    assert not STATE_WRITES.search("UPDATE notes SET signed_at = ? WHERE session_id = ?")


def test_only_the_lifecycle_owner_writes_the_session_state():
    owner = Path(inspect.getsourcefile(apply_transition) or "")
    sources = [p for d in ("appliance", "web_ui", "tests") for p in (ROOT / d).rglob("*.py")]
    found = [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, hit.start()) + 1}"
             for path in sources if path.resolve() != Path(__file__).resolve()
             for text in [path.read_text(encoding="utf-8")]
             for hit in STATE_WRITES.finditer(text)]
    assert found == [], f"sessions.state is written outside {owner.name}: use Storage.transition"


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
        # One recording at a time: each ends before the next starts.
        storage.transition(ids[-1], State.RECORDED if day == 1 else State.INTERRUPTED)
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


def release_2_database(data_dir: Path) -> dict[str, str]:
    """A database as release 2 of the schema wrote it: a user with a key slot and failures."""
    from argon2 import PasswordHasher

    from appliance import age
    from tests.conftest import PASSPHRASE, USER

    identity, recovery = age.X25519Identity.generate(), age.X25519Identity.generate()
    slot = age.encrypt(f"# Holdnote practice identity\n{identity}\n".encode(),
                       [age.ScryptRecipient(PASSPHRASE, 10)])
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    data_dir.mkdir(mode=0o700)
    conn = sqlite3.connect(data_dir / "holdnote.db")
    conn.executescript("".join(MIGRATIONS[:2]) + "PRAGMA user_version = 2;")
    with conn:
        conn.execute("INSERT INTO users(username, password_hash, created_at, failed_logins, "
                     "last_login) VALUES(?, ?, '2026-01-05T09:00:00+00:00', 4, "
                     "'2026-02-01T08:30:00+00:00')", (USER, hasher.hash(PASSPHRASE)))
        conn.execute("INSERT INTO key_slots(user_id, kind, slot_enc, created_at) VALUES(1, "
                     "'passphrase', ?, '2026-01-05T09:00:00+00:00')", (slot,))
        conn.execute("INSERT INTO key_slots(user_id, kind, slot_enc, created_at) VALUES(NULL, "
                     "'recovery', ?, '2026-01-05T09:00:00+00:00')",
                     (age.encrypt(str(identity).encode(), [recovery.to_recipient()]),))
        conn.execute("INSERT INTO settings(key, value) VALUES('practice_recipient', ?)",
                     (str(identity.to_recipient()),))
    conn.close()
    return {"identity": str(identity), "recovery": str(recovery)}


def test_upgrade_from_release_2_keeps_users_and_drops_unused_columns(tmp_path):
    from argon2 import PasswordHasher

    from appliance.access import failures
    from appliance.access.keys import KeyStore
    from appliance.access.logins import Login, Logins
    from tests.conftest import PASSPHRASE, USER

    keys = release_2_database(tmp_path / "data")
    storage = Storage(tmp_path / "data")
    with storage.read() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(users)")}
        user = conn.execute("SELECT * FROM users").fetchone()
    assert columns == {"id", "username", "password_hash", "created_at", "last_login", "role",
                       "full_name", "credentials"}
    assert (user["username"], user["created_at"], user["last_login"], user["role"]) == (
        USER, "2026-01-05T09:00:00+00:00", "2026-02-01T08:30:00+00:00", "admin")
    store = KeyStore(storage, tmp_path / "run", work_factor=10,
                     hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    # The four failures counted before the upgrade still count for the account.
    with storage.read() as conn:
        assert failures.read(conn, failures.USER, failures.user_key(USER)).failures == 4
    assert store.verify_password(USER, PASSPHRASE)
    store.unlock(USER, PASSPHRASE)
    assert str(store.identity()) == keys["identity"]
    store.lock()
    store.unlock_with_recovery(keys["recovery"])
    logins = Logins(storage, storage.now, idle_minutes=30, session_hours=12)
    assert isinstance(logins.check(logins.create(USER, "10.0.0.5")), Login)
