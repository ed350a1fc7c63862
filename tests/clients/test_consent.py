"""Consent on record (appliance/clients/consent.py): scope by date, withdrawal, the drafting gate."""

from __future__ import annotations

from datetime import date

import pytest

from appliance.clients.consent import (
    Consent,
    ConsentError,
    consents_of,
    drafting_blocked,
    gap_message,
    gaps,
    in_scope,
    record_consent,
    withdraw,
)
from tests.clients.conftest import add_users

TODAY = date(2026, 10, 20)


def _consent(given: date, scope: str, withdrawn: date | None = None) -> Consent:
    return Consent(1, 1, given, "v2", "Dr Rivera", frozenset(scope.split(",")), withdrawn)


def test_a_consent_covers_its_scope_from_its_date_until_withdrawn():
    consents = [_consent(date(2026, 10, 1), "recording,transcription", date(2026, 10, 10))]
    assert not in_scope(consents, "recording", date(2026, 9, 30)), "before it was given"
    assert in_scope(consents, "recording", date(2026, 10, 1))
    assert in_scope(consents, "transcription", date(2026, 10, 9))
    assert not in_scope(consents, "recording", date(2026, 10, 10)), "withdrawn that day"
    assert not in_scope(consents, "drafting", date(2026, 10, 5)), "never in scope"


def test_a_session_without_consent_in_scope_gets_a_mark_in_words():
    consents = [_consent(date(2026, 10, 1), "recording")]
    assert gaps(consents, date(2026, 10, 5)) == ("transcription", "drafting")
    assert gap_message(gaps(consents, date(2026, 10, 5)), date(2026, 10, 5)) == (
        "No consent on record for transcription or drafting by the on-device model on 5 Oct 2026")
    assert gap_message(gaps([], date(2026, 10, 5))[:1], date(2026, 10, 5)) == (
        "No consent on record for recording on 5 Oct 2026")
    assert gap_message((), date(2026, 10, 5)) is None


@pytest.fixture
def client_id(storage) -> int:
    (rivera,) = add_users(storage, "dr.rivera")
    return storage.create_client(rivera, b"sealed")


def _record(storage, client_id, given=date(2026, 10, 1), scope=("recording", "drafting"), **kw):
    fields = {"form_version": "v2", "obtained_by": "Dr Rivera", "by": "dr.rivera", "today": TODAY}
    return record_consent(storage, client_id, given_on=given, scope=scope, **{**fields, **kw})


def test_consents_are_kept_newest_first_and_withdrawal_is_dated(storage, client_id):
    older = _record(storage, client_id, date(2026, 9, 1), ("recording",))
    newer = _record(storage, client_id, date(2026, 10, 1))
    withdraw(storage, client_id, newer, on=date(2026, 10, 15), today=TODAY)
    kept = consents_of(storage, client_id)
    assert [c.id for c in kept] == [newer, older]
    assert kept[0].scope == frozenset({"recording", "drafting"})
    assert (kept[0].withdrawn_on, kept[1].withdrawn_on) == (date(2026, 10, 15), None)


@pytest.mark.parametrize(("change", "message"), [
    ({"given": date(2026, 10, 21)}, "21 Oct 2026 is in the future"),
    ({"scope": ()}, "Tick at least one"),
    ({"scope": ("recording", "selling")}, "Unknown consent scope 'selling'"),
    ({"form_version": "  "}, "form's version"),
    ({"obtained_by": ""}, "who obtained"),
])
def test_a_bad_consent_is_refused_and_nothing_is_stored(storage, client_id, change, message):
    with pytest.raises(ConsentError, match=message):
        _record(storage, client_id, **change)
    assert consents_of(storage, client_id) == []


def test_a_withdrawal_in_the_future_or_before_the_consent_is_refused(storage, client_id):
    consent_id = _record(storage, client_id)
    with pytest.raises(ConsentError, match="in the future"):
        withdraw(storage, client_id, consent_id, on=date(2026, 11, 1), today=TODAY)
    with pytest.raises(ConsentError, match="before the consent was given"):
        withdraw(storage, client_id, consent_id, on=date(2026, 9, 1), today=TODAY)
    with pytest.raises(ConsentError, match="no such consent"):
        withdraw(storage, client_id + 1, consent_id, on=TODAY, today=TODAY)
    assert consents_of(storage, client_id)[0].withdrawn_on is None
    withdraw(storage, client_id, consent_id, on=TODAY, today=TODAY)
    with pytest.raises(ConsentError, match="withdrawn already"):
        withdraw(storage, client_id, consent_id, on=TODAY, today=TODAY)


def test_drafting_stops_when_the_newest_consent_is_withdrawn_or_leaves_it_out(storage, client_id):
    session_day = date(2026, 10, 5)
    assert drafting_blocked(storage, client_id, session_day) is None, "no consent: marked, not blocked"
    first = _record(storage, client_id)
    assert drafting_blocked(storage, client_id, session_day) is None
    withdraw(storage, client_id, first, on=date(2026, 10, 12), today=TODAY)
    assert "withdrew consent on 12 Oct 2026" in drafting_blocked(storage, client_id, session_day)
    _record(storage, client_id, date(2026, 10, 13), ("recording", "transcription"))
    assert "does not cover drafting" in drafting_blocked(storage, client_id, session_day)
