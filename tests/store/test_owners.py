"""Session owners and shares in the database: what each person's queries return."""

from __future__ import annotations

from appliance.store.db import State, Storage, Viewer


def _new(storage: Storage, owner_id: int | None = None) -> int:
    """A finished recording (one may be recording at a time) of ``owner_id``."""
    session_id = storage.create_session(owner_id=owner_id).id
    storage.transition(session_id, State.RECORDED, ended_at=storage.now())
    return session_id


def _sessions(storage: Storage) -> tuple[Viewer, Viewer, Viewer, dict[str, int]]:
    """Three accounts' viewers (ids as the users table would give) and four sessions."""
    rivera, chen, boss = Viewer(1, "dr.rivera"), Viewer(2, "dr.chen"), Viewer(3, "boss", True)
    with storage.connect() as conn:  # the users rows the foreign keys need
        for viewer in (rivera, chen, boss):
            conn.execute("INSERT INTO users(id, username, password_hash, created_at) "
                         "VALUES(?, ?, 'x', '2024-01-01')", (viewer.user_id, viewer.username))
    ids = {"rivera": _new(storage, 1), "chen": _new(storage, 2), "shared": _new(storage, 2),
           "nobody": _new(storage)}
    storage.share(ids["shared"], rivera.user_id, "dr.chen")
    return rivera, chen, boss, ids


def test_a_clinician_lists_own_shared_and_unassigned_sessions_only(storage):
    rivera, chen, boss, ids = _sessions(storage)
    listed = {s.id for s in storage.list_sessions(viewer=rivera)}
    assert listed == {ids["rivera"], ids["shared"], ids["nobody"]}
    assert storage.count_sessions(viewer=rivera) == 3
    assert storage.count_sessions(states=(State.RECORDED,), viewer=chen) == 3
    # An admin sees every session listed; reading is still only own and shared.
    assert storage.count_sessions(viewer=boss) == 4
    assert storage.readable_ids(boss) == set()
    assert storage.readable_ids(rivera) == {ids["rivera"], ids["shared"]}
    assert storage.readable_ids(chen) == {ids["chen"], ids["shared"]}


def test_claiming_happens_once_and_shares_end(storage):
    rivera, chen, _, ids = _sessions(storage)
    assert storage.claim(ids["nobody"], chen.user_id)
    assert not storage.claim(ids["nobody"], rivera.user_id), "a claimed session stays claimed"
    assert storage.get_session(ids["nobody"]).owner_id == chen.user_id
    assert not storage.share(ids["shared"], rivera.user_id, "dr.chen"), "already shared"
    assert storage.unshare(ids["shared"], rivera.user_id)
    assert not storage.unshare(ids["shared"], rivera.user_id)
    assert ids["shared"] not in storage.readable_ids(rivera)


def test_handing_over_turns_a_share_into_ownership(storage):
    rivera, chen, _, ids = _sessions(storage)
    storage.assign(ids["shared"], rivera.user_id)
    assert storage.get_session(ids["shared"]).owner_id == rivera.user_id
    assert storage.shared_with(ids["shared"]) == []
    assert ids["shared"] not in storage.readable_ids(chen)


def test_record_facts_and_deleting_only_the_transcript(storage):
    session = _new(storage)
    assert not storage.record_facts(session).has_note
    storage.save_transcript(session, b"ciphertext")
    storage.save_note(session, b"note", "holdnote")
    facts = storage.record_facts(session)
    assert facts.has_note and facts.has_transcript and not facts.signed
    assert storage.delete_transcript(session)
    assert not storage.delete_transcript(session)
    assert storage.load_note(session) is not None
