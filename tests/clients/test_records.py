"""Client records (appliance/clients/records.py): validation, encryption at rest, loading."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from appliance import age
from appliance.clients.records import (
    ClientRecord,
    RecordError,
    clients_for,
    load_client,
    make_record,
    seal_record,
)
from tests.clients.conftest import add_users


def test_a_record_from_the_form_is_tidied():
    record = make_record("  A.  B. ", " ID-7 ", "2026-09-01", "Sleep better\n\n  fewer panic attacks \n")
    assert record == ClientRecord("A. B.", "ID-7", date(2026, 9, 1),
                                  ("Sleep better", "fewer panic attacks"))


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "  "}, "display name or initials"),
    ({"name": "x" * 121}, "at most 120"),
    ({"name": "A", "start_date": "1 Sept"}, "not a date"),
    ({"name": "A", "goals": "g\n" * 21}, "at most 20 treatment goals"),
])
def test_a_bad_record_is_refused_with_the_field_named(fields, message):
    with pytest.raises(RecordError, match=message):
        make_record(**fields)


def test_the_record_is_stored_encrypted_and_opens_with_the_identity(storage, identity):
    (rivera,) = add_users(storage, "dr.rivera")
    record = ClientRecord("Jordan K.", "C-0042", date(2026, 9, 1), ("Return to work",))
    client_id = storage.create_client(rivera, seal_record(record, identity.to_recipient()))
    raw = sqlite3.connect(storage.db_path).execute("SELECT record_enc FROM clients").fetchone()[0]
    assert b"Jordan" not in raw and b"Return to work" not in raw
    loaded = load_client(storage, client_id, identity)
    assert loaded is not None
    assert (loaded.record, loaded.owner_id, loaded.status) == (record, rivera, "active")
    assert load_client(storage, client_id + 1, identity) is None


def test_a_record_that_does_not_decrypt_is_marked_not_raised(storage, identity):
    (rivera,) = add_users(storage, "dr.rivera")
    stranger = age.X25519Identity.generate().to_recipient()
    client_id = storage.create_client(rivera, seal_record(ClientRecord("Sam"), stranger))
    loaded = load_client(storage, client_id, identity)
    assert loaded is not None and loaded.record.damaged
    assert "unreadable" in loaded.record.name


def test_a_clinician_gets_only_their_clients_active_first(storage, identity):
    rivera, chen = add_users(storage, "dr.rivera", "dr.chen")
    recipient = identity.to_recipient()
    first = storage.create_client(rivera, seal_record(ClientRecord("First"), recipient))
    storage.create_client(rivera, seal_record(ClientRecord("Second"), recipient))
    storage.create_client(chen, seal_record(ClientRecord("Chen's"), recipient))
    storage.update_client(first, status="closed")
    listed = clients_for(storage, rivera, identity)
    assert [(c.record.name, c.status) for c in listed] == [("Second", "active"), ("First", "closed")]
