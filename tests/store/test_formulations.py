"""Case-conceptualization versions in the database (appliance/store/formulations.py)."""

from __future__ import annotations

import pytest

from appliance.errors import InvalidStateError
from appliance.store import formulations as table
from tests.clients.conftest import add_users


@pytest.fixture
def client_id(storage):
    (rivera,) = add_users(storage, "dr.rivera")
    return storage.create_client(rivera, b"sealed")


def test_a_request_queues_version_one_and_again_the_same_unsigned_version(storage, client_id):
    assert table.request(storage, client_id, "dr.rivera") == 1
    assert table.claim(storage, client_id, 1)
    table.drafted(storage, client_id, 1, b"body-1", progress=1.0, state="draft")
    assert table.request(storage, client_id, "dr.rivera") == 1
    row = table.newest(storage, client_id)
    assert (row.version, row.state, row.body_enc) == (1, "queued", b"body-1")
    assert table.waiting(storage) == [(client_id, 1)]


def test_signing_freezes_a_version_and_the_next_draft_is_version_two(storage, client_id):
    table.request(storage, client_id, "dr.rivera")
    table.claim(storage, client_id, 1)
    table.drafted(storage, client_id, 1, b"drafted", progress=1.0, state="draft")
    table.save(storage, client_id, 1, b"edited", "dr.rivera")
    table.sign(storage, client_id, 1, b"final", "dr.rivera")
    with pytest.raises(InvalidStateError, match="signed"):
        table.save(storage, client_id, 1, b"changed later", "dr.rivera")
    with pytest.raises(InvalidStateError, match="signed"):
        table.sign(storage, client_id, 1, b"again", "dr.rivera")
    assert not table.drafted(storage, client_id, 1, b"model", progress=1.0, state="draft")
    table.failed(storage, client_id, 1, "late")
    assert table.request(storage, client_id, "dr.rivera") == 2
    old, new = table.version(storage, client_id, 1), table.newest(storage, client_id)
    assert (old.state, old.body_enc, old.signed_by, old.reason) == ("signed", b"final", "dr.rivera", None)
    assert (new.version, new.state, new.body_enc) == (2, "queued", None)
    assert [r.version for r in table.versions(storage, client_id)] == [2, 1]


def test_nothing_is_signed_while_queued_or_drafting_and_a_missing_version_is_refused(storage, client_id):
    table.request(storage, client_id, "dr.rivera")
    with pytest.raises(InvalidStateError, match="waits for the model"):
        table.sign(storage, client_id, 1, b"x", "dr.rivera")
    table.claim(storage, client_id, 1)
    with pytest.raises(InvalidStateError, match="drafting"):
        table.save(storage, client_id, 1, b"x", "dr.rivera")
    assert table.request(storage, client_id, "dr.rivera") == 1  # not queued twice
    assert table.newest(storage, client_id).state == "drafting"
    with pytest.raises(InvalidStateError, match="no such version"):
        table.save(storage, client_id, 7, b"x", "dr.rivera")


def test_deleting_the_client_deletes_its_versions(storage, client_id):
    table.request(storage, client_id, "dr.rivera")
    storage.delete_client(client_id)
    assert table.versions(storage, client_id) == []
