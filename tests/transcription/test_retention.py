"""Retention and signed records: audio and transcripts go on schedule, signed notes stay.

A signed note and its addenda are a clinical record that record-keeping rules
keep for years, so ``retention.session_keep_days`` removes them only when
``retention.delete_signed_notes`` says so explicitly.
"""

from __future__ import annotations

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.store.db import State, Storage, write_note
from appliance.transcription import commands
from tests.conftest import make_config
from tests.transcription.test_job import Clock, actions, add_session, local, never_load, walk

USER_NAME = "dr.rivera"


def _signed_session(storage: Storage, recipient) -> int:
    """A session signed the way the web page signs it, with one addendum."""
    session = add_session(storage, recipient, None, raw=b"sealed audio")
    walk(storage, session.id, State.TRANSCRIBING, State.DRAFT, transcribed_at=storage.now())
    storage.save_transcript(session.id, age.encrypt(b'{"segments": []}', [recipient]))
    storage.save_note(session.id, age.encrypt(b'{"sections": []}', [recipient]), "holdnote")
    with storage.connect() as conn:
        write_note(conn, session.id, age.encrypt(b'{"signed": 1}', [recipient]), USER_NAME,
                   storage.now(), signed=True)
    storage.transition(session.id, State.SIGNED)
    storage.add_addendum(session.id, age.encrypt(b"called the client back", [recipient]),
                         USER_NAME)
    return session.id


def _draft_session(storage: Storage, recipient) -> int:
    session = add_session(storage, recipient, None, raw=b"sealed audio")
    walk(storage, session.id, State.TRANSCRIBING, State.DRAFT, transcribed_at=storage.now())
    storage.save_transcript(session.id, age.encrypt(b'{"segments": []}', [recipient]))
    storage.save_note(session.id, age.encrypt(b'{"sections": []}', [recipient]), "holdnote")
    return session.id


def _setup(tmp_path, **retention):
    cfg = make_config(tmp_path, retention={"session_keep_days": 30, **retention})
    clock = Clock(local(month=1, day=2, hour=1))
    storage = Storage(cfg.paths.data_dir, clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    keys.init(USER_NAME, "correct horse battery staple")
    signed = _signed_session(storage, keys.recipient())
    draft = _draft_session(storage, keys.recipient())
    clock.at = local(month=3, day=4, hour=1)  # both are now older than 30 days
    return cfg, clock, storage, signed, draft


def test_retention_keeps_signed_notes_and_addenda_but_removes_audio_and_transcript(tmp_path):
    cfg, clock, storage, signed, draft = _setup(tmp_path)
    audio = storage.get_session(signed).audio_path
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)

    remaining = {s.id for s in storage.list_sessions()}
    assert remaining == {signed}, "the unsigned draft goes, the signed record stays"
    note, addenda = storage.load_note_with_addenda(signed)
    assert note is not None and note["signed_at"] and len(addenda) == 1
    assert storage.load_transcript(signed) is None
    assert not audio.exists()
    assert ("transcriber", "retention.transcript_deleted", signed) in actions(storage)
    assert ("transcriber", "retention.session_deleted", draft) in actions(storage)

    # The next night finds nothing more to do and logs nothing more.
    before = len(actions(storage))
    clock.at = local(month=3, day=5, hour=1)
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    assert len(actions(storage)) == before
    assert storage.load_note(signed)["signed_at"]


def test_retention_deletes_signed_notes_only_when_configured_to(tmp_path):
    cfg, clock, storage, signed, _ = _setup(tmp_path, delete_signed_notes=True)
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    assert storage.list_sessions() == []
    assert ("transcriber", "retention.session_deleted", signed) in actions(storage)


# --- audio: delete_after_signing (the default) and the other choices -----------------------


def _audio_setup(tmp_path, **retention):
    """A signed session, an unsigned draft and a damaged draft, all transcribed on 2 Jan."""
    cfg = make_config(tmp_path, retention=retention)
    clock = Clock(local(month=1, day=2, hour=1))
    storage = Storage(cfg.paths.data_dir, clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    keys.init(USER_NAME, "correct horse battery staple")
    sessions = {"signed": _signed_session(storage, keys.recipient()),
                "draft": _draft_session(storage, keys.recipient()),
                "damaged": _draft_session(storage, keys.recipient())}
    storage.update_session(sessions["damaged"], unreadable_s=2.05)
    keys.lock()  # so the sessions still recording or waiting below stay as they are
    waiting = add_session(storage, keys.recipient(), None, raw=b"sealed audio")
    sessions["waiting"] = waiting.id
    return cfg, clock, storage, sessions


def _kept(storage: Storage, sessions: dict[str, int]) -> set[str]:
    return {name for name, sid in sessions.items()
            if storage.get_session(sid).audio_path.exists()
            and storage.get_session(sid).audio_deleted_at is None}


def _night(cfg, clock, **when) -> None:
    clock.at = local(**when)
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)


def _deleted(storage: Storage) -> dict[int, str]:
    return {e.session_id: e.detail for e in AuditLog(storage).entries()
            if e.action == "retention.audio_deleted"}


def test_by_default_audio_stays_until_the_note_is_signed_at_most_audio_keep_days(tmp_path):
    cfg, clock, storage, sessions = _audio_setup(tmp_path)
    assert cfg.retention.audio == "delete_after_signing"
    _night(cfg, clock, month=1, day=3, hour=1)
    assert _kept(storage, sessions) == {"draft", "damaged", "waiting"}
    assert _deleted(storage) == {sessions["signed"]: "deleted after signing"}
    _night(cfg, clock, month=1, day=8, hour=1)  # 6 days after transcription
    assert _kept(storage, sessions) == {"draft", "damaged", "waiting"}
    _night(cfg, clock, month=1, day=10, hour=1)  # past audio_keep_days: unsigned or not
    assert _kept(storage, sessions) == {"damaged", "waiting"}
    assert "the limit for an unsigned note" in _deleted(storage)[sessions["draft"]]
    _night(cfg, clock, month=6, day=1, hour=1)  # damaged audio is never deleted by retention
    assert _kept(storage, sessions) == {"damaged", "waiting"}


def test_the_old_choices_are_unchanged(tmp_path):
    cfg, clock, storage, sessions = _audio_setup(tmp_path / "days", audio="keep_days")
    _night(cfg, clock, month=1, day=3, hour=1)
    assert _kept(storage, sessions) == set(sessions), "keep_days does not look at signing"
    _night(cfg, clock, month=1, day=10, hour=1)
    assert _kept(storage, sessions) == {"damaged", "waiting"}
    assert set(_deleted(storage).values()) == {"kept 7 days"}

    cfg, clock, storage, sessions = _audio_setup(tmp_path / "now",
                                                 audio="delete_after_transcription")
    _night(cfg, clock, month=6, day=1, hour=1)  # it deletes when it transcribes, not later
    assert _kept(storage, sessions) == set(sessions) and _deleted(storage) == {}
