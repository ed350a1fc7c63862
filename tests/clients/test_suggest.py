"""The likely client of a session (appliance/clients/suggest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from appliance.clients.suggest import Seen, likely_client

# A Monday at 10:00, and the weeks before it.
NOW = datetime(2026, 10, 19, 10, 0, tzinfo=UTC)


def _weeks_ago(weeks: int, hours: float = 0) -> datetime:
    return NOW - timedelta(weeks=weeks) + timedelta(hours=hours)


def test_the_client_of_the_weekly_slot_is_suggested_over_the_most_recent():
    history = [Seen(_weeks_ago(1), 7), Seen(_weeks_ago(2, 0.5), 7),
               Seen(_weeks_ago(0, -2), 9)]  # 9 was seen this morning, at another hour
    assert likely_client(NOW, history, {7, 9}) == 7


def test_a_tie_in_the_slot_goes_to_the_client_seen_last():
    history = [Seen(_weeks_ago(3), 7), Seen(_weeks_ago(1), 9)]
    assert likely_client(NOW, history, {7, 9}) == 9


def test_without_a_session_in_the_slot_the_most_recent_client_is_suggested():
    history = [Seen(_weeks_ago(1, 3), 7), Seen(_weeks_ago(0, -26), 9)]
    assert likely_client(NOW, history, {7, 9}) == 9


def test_closed_clients_are_never_suggested():
    history = [Seen(_weeks_ago(1), 7), Seen(_weeks_ago(2), 7)]
    assert likely_client(NOW, history, {9}) is None
    assert likely_client(NOW, [], {7}) is None
