"""Clients in the database (appliance/store/clients.py and the Storage methods)."""

from __future__ import annotations

from datetime import date

import pytest

from appliance.errors import InvalidStateError, SessionNotFoundError
from appliance.store.clients import ClientNotFoundError
from appliance.store.db import State, Storage
from tests.clients.conftest import add_users


def _session(storage: Storage, owner_id: int | None) -> int:
    session_id = storage.create_session(owner_id=owner_id).id
    storage.transition(session_id, State.RECORDED, ended_at=storage.now())
    return session_id


@pytest.fixture
def world(storage):
    rivera, chen = add_users(storage, "dr.rivera", "dr.chen")
    return {"rivera": rivera, "chen": chen,
            "client": storage.create_client(rivera, b"sealed-1"),
            "other": storage.create_client(chen, b"sealed-2"),
            "s1": _session(storage, rivera), "s2": _session(storage, rivera),
            "chens": _session(storage, chen)}


def test_sessions_are_assigned_and_listed_oldest_first(storage, world):
    storage.assign_clients([world["s2"], world["s1"]], world["client"], owner_id=world["rivera"])
    assert [s.id for s in storage.client_sessions(world["client"])] == [world["s1"], world["s2"]]
    assert storage.get_session(world["s1"]).client_id == world["client"]
    storage.assign_client(world["s1"], None)
    assert [s.id for s in storage.client_sessions(world["client"])] == [world["s2"]]


def test_assigning_to_another_clinicians_closed_or_missing_client_changes_nothing(storage, world):
    rivera, s1 = world["rivera"], world["s1"]
    with pytest.raises(ClientNotFoundError, match="of yours"):
        storage.assign_client(s1, world["other"], owner_id=rivera)
    with pytest.raises(InvalidStateError, match="not yours"):
        storage.assign_clients([s1, world["chens"]], world["client"], owner_id=rivera)
    with pytest.raises(ClientNotFoundError):
        storage.assign_client(s1, 999, owner_id=rivera)
    with pytest.raises(SessionNotFoundError):
        storage.assign_client(999, world["client"])
    storage.update_client(world["client"], status="closed")
    with pytest.raises(InvalidStateError, match="reopen the client first"):
        storage.assign_client(s1, world["client"])
    assert [storage.get_session(s).client_id for s in (s1, world["chens"])] == [None, None]


def test_deleting_a_client_keeps_its_sessions_unassigned_and_drops_its_consents(storage, world):
    storage.assign_client(world["s1"], world["client"])
    storage.add_consent(world["client"], given_on=date(2026, 10, 1), form_version="v1",
                        obtained_by="Dr Rivera", scope=("recording",), by="dr.rivera")
    storage.delete_client(world["client"])
    assert storage.client(world["client"]) is None
    assert storage.get_session(world["s1"]).client_id is None
    assert storage.consents(world["client"]) == []
    with pytest.raises(ClientNotFoundError):
        storage.delete_client(world["client"])


def test_a_client_record_and_status_are_updated(storage, world):
    storage.update_client(world["client"], record_enc=b"sealed-new")
    storage.update_client(world["client"], status="closed")
    row = storage.client(world["client"])
    assert (row.record_enc, row.status) == (b"sealed-new", "closed")
    with pytest.raises(ValueError, match="active, closed"):
        storage.update_client(world["client"], status="archived")
    assert [c.id for c in storage.clients_of(world["rivera"])] == [world["client"]]
