"""Process notes (appliance/store/process_notes.py): one per session and author, compare-and-swap,
and gone with their session or their author."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.store import process_notes as table
from appliance.store.db import State
from appliance.store.process_notes import NONE, ProcessNoteConflictError
from tests.conftest import USER

COLLEAGUE = "dr.chen"


def _session(storage) -> int:
    """A recorded session (one at a time may be recording)."""
    sid = storage.create_session().id
    storage.transition(sid, State.RECORDED, ended_at=storage.now(), duration_s=60.0)
    return sid


@pytest.fixture
def people(keystore, recovery_key) -> dict[str, int]:
    """Two accounts: the first clinician and a colleague."""
    keystore.add_user(COLLEAGUE, "a passphrase for dr chen", keystore.identity())
    return {u.username: u.id for u in keystore.users()}


def test_each_author_has_their_own_note_on_a_session(storage, people):
    sid = _session(storage)
    mine = table.save(storage, sid, people[USER], b"mine", based_on=NONE)
    table.save(storage, sid, people[COLLEAGUE], b"theirs", based_on=NONE)
    assert table.load(storage, sid, people[USER]).body_enc == b"mine"
    assert table.load(storage, sid, people[COLLEAGUE]).body_enc == b"theirs"
    assert mine.version == table.version_of(b"mine") != NONE
    other = _session(storage)
    assert table.load(storage, other, people[USER]) is None
    assert not table.exists(storage, other, people[USER]) and table.exists(storage, sid, people[USER])


def test_a_save_over_an_old_version_writes_nothing(storage, people):
    sid = _session(storage)
    first = table.save(storage, sid, people[USER], b"first tab", based_on=NONE)
    second = table.save(storage, sid, people[USER], b"first tab again", based_on=first.version)
    assert second.created_at == first.created_at
    with pytest.raises(ProcessNoteConflictError, match="saved again") as raised:
        table.save(storage, sid, people[USER], b"second tab", based_on=first.version)
    assert raised.value.saved_at == second.updated_at
    with pytest.raises(ProcessNoteConflictError):  # a second "new" note is a conflict too
        table.save(storage, sid, people[USER], b"another new one", based_on=NONE)
    assert table.load(storage, sid, people[USER]).body_enc == b"first tab again"


def test_delete_removes_only_the_version_the_page_showed(storage, people):
    sid = _session(storage)
    first = table.save(storage, sid, people[USER], b"one", based_on=NONE)
    table.save(storage, sid, people[USER], b"two", based_on=first.version)
    with pytest.raises(ProcessNoteConflictError):
        table.delete(storage, sid, people[USER], based_on=first.version)
    assert table.exists(storage, sid, people[USER])
    assert table.delete(storage, sid, people[USER]) is True
    assert table.delete(storage, sid, people[USER]) is False
    assert not table.exists(storage, sid, people[USER])


def test_a_note_needs_a_real_session_and_author(storage, people):
    with pytest.raises(sqlite3.IntegrityError):
        table.save(storage, 999, people[USER], b"x", based_on=NONE)
    sid = _session(storage)
    with pytest.raises(sqlite3.IntegrityError):
        table.save(storage, sid, 999, b"x", based_on=NONE)


def test_deleting_the_session_or_the_author_deletes_their_notes(storage, keystore, people):
    kept, gone = _session(storage), _session(storage)
    for sid in (kept, gone):
        for author in people.values():
            table.save(storage, sid, author, b"note", based_on=NONE)
    storage.delete_session(gone)
    assert not any(table.exists(storage, gone, author) for author in people.values())
    assert all(table.exists(storage, kept, author) for author in people.values())
    keystore.remove_user(COLLEAGUE)
    assert not table.exists(storage, kept, people[COLLEAGUE])
    assert table.exists(storage, kept, people[USER])
