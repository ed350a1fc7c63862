"""Transcript versions (appliance/store/transcripts.py): corrections, the race, deletion."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.store.transcripts import VersionConflictError


def _correct(storage, sid: int, based_on: int, text: bytes, summary: str = "line 1 text") -> int:
    return storage.save_correction(sid, based_on=based_on, result_enc=text, flags_enc=b"flags",
                                   author="dr.rivera", summary=summary)


def test_a_correction_replaces_the_transcript_and_keeps_the_recognised_one(storage):
    sid = storage.create_session().id
    storage.save_transcript(sid, b"recognised")
    assert storage.stored_transcript(sid).version == 0
    assert storage.transcript_versions(sid) == [], "no history before a correction"
    assert _correct(storage, sid, 0, b"corrected once") == 1
    assert _correct(storage, sid, 1, b"corrected twice", "speaker 1 renamed") == 2
    assert storage.load_transcript(sid) == b"corrected twice"
    assert storage.get_session(sid).flags_enc == b"flags"
    history = storage.transcript_versions(sid)
    assert [(v.version, v.author, v.summary) for v in history] == [
        (0, None, "recognised by the overnight job"), (1, "dr.rivera", "line 1 text"),
        (2, "dr.rivera", "speaker 1 renamed")]
    assert storage.transcript_version(sid, 0).result_enc == b"recognised"
    assert storage.transcript_version(sid, 1).result_enc == b"corrected once"


def test_a_correction_based_on_an_old_version_writes_nothing(storage):
    sid = storage.create_session().id
    storage.save_transcript(sid, b"recognised")
    _correct(storage, sid, 0, b"first tab")
    with pytest.raises(VersionConflictError, match="version 1, not 0"):
        _correct(storage, sid, 0, b"second tab")
    assert storage.load_transcript(sid) == b"first tab"
    assert [v.version for v in storage.transcript_versions(sid)] == [0, 1]


def test_search_sees_a_correction(storage):
    sid = storage.create_session().id
    storage.save_transcript(sid, b"recognised")
    before = {r["id"]: r["transcript_v"] for r in storage.search_fingerprints()}
    _correct(storage, sid, 0, b"corrected")
    after = {r["id"]: r["transcript_v"] for r in storage.search_fingerprints()}
    assert before[sid] != after[sid]


@pytest.mark.parametrize("delete", ["session", "transcript"])
def test_deleting_leaves_no_version_behind(storage, delete):
    sid = storage.create_session().id
    marker = b"UNIQUE-RECOGNISED-" * 40
    storage.save_transcript(sid, marker)
    _correct(storage, sid, 0, b"UNIQUE-CORRECTED-" * 40)
    other = sqlite3.connect(storage.db_path)  # keeps the WAL from folding in on its own
    other.execute("SELECT COUNT(*) FROM sessions").fetchone()
    if delete == "session":
        storage.delete_session(sid)
    else:
        assert storage.delete_transcript(sid)
    raw = storage.db_path.read_bytes()
    wal = storage.db_path.with_name(storage.db_path.name + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    other.close()
    assert b"UNIQUE-RECOGNISED-" not in raw and b"UNIQUE-CORRECTED-" not in raw
    assert storage.transcript_versions(sid) == []


def test_a_new_recognition_starts_a_new_history(storage):
    sid = storage.create_session().id
    storage.save_transcript(sid, b"recognised")
    _correct(storage, sid, 0, b"corrected")
    storage.save_transcript(sid, b"recognised again")
    assert storage.stored_transcript(sid).version == 0 and storage.transcript_versions(sid) == []
