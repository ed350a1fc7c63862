"""Search across transcripts, notes and labels: found, kept current, never on disk."""

from __future__ import annotations

import re
from datetime import timedelta

from appliance.clients.records import ClientRecord, seal_record
from appliance.store.db import State
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, actions, app, browser, clock, colleague, recovery, result, seed, svc, user)
from web_ui.views.search_index import parse_query

WORD = "quetzalcoatl"


def _hits(user, query: str) -> list[str]:
    return re.findall(r'data-testid="search-hit" data-session-id="(\d+)"',
                      user.get("/search", query_string={"q": query}).text)


def _seed_two(svc, clock) -> tuple[int, int]:
    first = seed(svc, clock, started=START, label="R.T. 2024-001", res=result(
        [(5.0, "Client", f"I dreamt about a {WORD.capitalize()} in the garden."),
         (10.0, "Clinician", "What did the garden feel like?")]))
    second = seed(svc, clock, started=START + timedelta(days=1), res=result(
        [(2.0, "Client", "Work was busy this week.")],
        sections={"plan": "Practise the breathing exercise daily."}))
    return first, second


def test_search_finds_transcript_text_and_links_to_the_moment(user, svc, clock):
    first, _ = _seed_two(svc, clock)
    page = user.get("/search", query_string={"q": WORD.upper()}).text
    assert _hits(user, WORD) == [str(first)]
    assert f"<mark>{WORD.capitalize()}</mark>" in page
    assert f'href="/sessions/{first}#t-5"' in page


def test_search_finds_note_text_and_client_labels(user, svc, clock):
    first, second = _seed_two(svc, clock)
    assert _hits(user, "breathing exercise") == [str(second)]
    assert _hits(user, "R.T.") == [str(first)]
    assert _hits(user, '"the garden feel"') == [str(first)]
    assert _hits(user, '"garden the feel"') == []
    assert _hits(user, "garden busy") == [], "every word must appear in one session"


def test_search_sees_edits_deletions_and_new_sessions(user, svc, clock):
    first, second = _seed_two(svc, clock)
    assert _hits(user, "breathing") == [str(second)]
    page = user.get(f"/sessions/{second}").text
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    user.submit(f"/sessions/{second}/note", {"version": version, "action": "save",
                                             "section-plan": "Try journaling instead."},
                page=f"/sessions/{second}")
    assert _hits(user, "breathing") == []
    assert _hits(user, "journaling") == [str(second)]
    third = seed(svc, clock, started=START + timedelta(days=2),
                 res=result([(1.0, "Client", f"Another {WORD} dream.")]))
    assert _hits(user, WORD) == [str(third), str(first)], "newest first"
    svc.storage.delete_session(third)
    assert _hits(user, WORD) == [str(first)]


def test_search_keeps_nothing_on_disk_and_the_query_out_of_the_audit(user, svc, clock):
    _seed_two(svc, clock)
    assert _hits(user, WORD)
    for path in svc.storage.data_dir.rglob("*"):
        if path.is_file():
            assert WORD.encode() not in path.read_bytes().lower(), path
    entry = svc.audit.entries(limit=1)[0]
    assert entry.action == "search" and WORD not in (entry.detail or "")


def test_the_audit_counts_matches_in_plain_english(user, svc, clock):
    _seed_two(svc, clock)
    for query, detail in [(WORD, "1 session matched"), ("garden week", "0 sessions matched"),
                          ("the", "2 sessions matched")]:
        page = user.get("/search", query_string={"q": query}).text
        entry = svc.audit.entries(limit=1)[0]
        assert (entry.action, entry.detail) == ("search", detail), query
        assert "1 sessions" not in page


def test_locking_the_device_empties_the_index(user, svc, clock):
    _seed_two(svc, clock)
    assert _hits(user, WORD)
    svc.keys.lock()
    response = user.get("/search", query_string={"q": WORD})
    assert response.status_code == 302
    assert not svc.index._docs and svc.plain._size == 0


def test_an_empty_query_searches_nothing(user, svc, clock):
    _seed_two(svc, clock)
    page = user.get("/search", query_string={"q": "   "}).text
    assert 'data-testid="search-hit"' not in page
    assert "search" not in actions(svc)


def test_sessions_without_results_are_searchable_by_label(user, svc, clock):
    waiting = seed(svc, clock, started=START, state=State.RECORDED, label="K.L. waiting")
    assert _hits(user, "k.l.") == [str(waiting)]


def test_query_parsing():
    assert parse_query('  Garden  "the  Feel" garden ') == ["garden", "the feel"]
    assert parse_query("") == []
    assert len(parse_query(" ".join(f"w{n}" for n in range(20)))) == 8


def test_logging_in_prepares_the_index_in_the_background(app, browser, svc, clock, recovery):
    _seed_two(svc, clock)
    app.config["HOLDNOTE_WARM_SEARCH"] = True
    browser.login()
    thread = svc.index._warming
    assert thread is not None
    thread.join(timeout=60)
    assert len(svc.index._docs) == 2, "both sessions decrypted before any search"
    assert svc.index.warm(svc.keys.identity()) is None, "built once, not again"


# --- clients (web_ui/views/search.py's client filter, client names in the index) ---------------


def _client(svc, name: str, owner_id: int = 1) -> int:
    return svc.storage.create_client(owner_id, seal_record(ClientRecord(name),
                                                           svc.keys.recipient()))


def test_a_client_filter_keeps_only_that_clients_sessions(user, svc, clock):
    first, _ = _seed_two(svc, clock)
    both = seed(svc, clock, started=START + timedelta(days=2), res=result(
        [(1.0, "Client", f"The {WORD} came back.")]))
    client_id = _client(svc, "Ines Marchetti")
    svc.storage.assign_client(first, client_id)
    assert _hits(user, WORD) == [str(both), str(first)]
    page = user.get("/search", query_string={"q": WORD, "client": str(client_id)}).text
    assert re.findall(r'data-testid="search-hit" data-session-id="(\d+)"', page) == [str(first)]
    assert f'<option value="{client_id}" selected>Ines Marchetti</option>' in page
    assert actions(svc)[-1] == "search"
    assert "Ines" not in repr([e.detail for e in svc.audit.entries()])


def test_a_clients_name_finds_their_sessions_and_follows_a_rename(user, svc, clock):
    first, second = _seed_two(svc, clock)
    client_id = _client(svc, "Ines Marchetti")
    svc.storage.assign_client(second, client_id)
    assert _hits(user, "marchetti") == [str(second)]
    svc.storage.update_client(client_id, record_enc=seal_record(ClientRecord("Ines Okafor"),
                                                                svc.keys.recipient()))
    assert _hits(user, "marchetti") == []
    assert _hits(user, "okafor") == [str(second)]
    svc.storage.assign_client(second, None)
    assert _hits(user, "okafor") == []


def test_the_client_filter_offers_and_accepts_only_your_own_clients(app, user, svc, clock):
    first, _ = _seed_two(svc, clock)
    client_id = _client(svc, "Ines Marchetti")
    svc.storage.assign_client(first, client_id)
    chen = colleague(app, svc)
    page = chen.get("/search").text
    assert "Ines Marchetti" not in page and 'data-testid="search-client"' not in page
    refused = chen.get("/search", query_string={"q": WORD, "client": str(client_id)})
    assert refused.status_code == 404 and "no such client" in refused.text.lower()
    assert _hits(chen, "marchetti") == []
