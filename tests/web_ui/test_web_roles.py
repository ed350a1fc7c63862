"""Roles and privacy between clinicians on one device, through every route.

dr.rivera set the device up (the admin); dr.chen is a clinician. Each has a
session, and one recording is unassigned. A colleague's session answers 404
by every URL, exactly like one that does not exist; search and the list
never show a colleague's words; sharing is read-only; claiming, handing
over, sharing and deleting are audit-logged; only an admin manages users.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from appliance.store.db import State
from tests.conftest import USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    Browser,
    actions,
    app,
    browser,
    clock,
    recovery,
    result,
    seed,
    svc,
    user,
)

CHEN = "dr.chen"
CHEN_PASSPHRASE = "a passphrase for dr chen"  # noqa: S105 - a test account
WORDS = {"rivera": "zebracorn", "chen": "quokkafish", "nobody": "narwhalish"}
LABELS = {"rivera": "R.T. 2024-001", "chen": "C.H. 2024-002", "nobody": "N.B. 2024-003"}


def _session(svc, clock, who: str, days: int, owner: str | None) -> int:
    res = result([(5.0, "Client", f"I keep thinking about the {WORDS[who]} again."),
                  (10.0, "Clinician", "Tell me more.")])
    return seed(svc, clock, started=START + timedelta(days=days), res=res, label=LABELS[who],
                owner=owner)


@pytest.fixture
def ids(user, svc, clock) -> dict[str, int]:
    """Three transcribed sessions: dr.rivera's, dr.chen's and an unassigned one."""
    svc.keys.add_user(CHEN, CHEN_PASSPHRASE, svc.keys.identity())
    return {"rivera": _session(svc, clock, "rivera", 0, USER),
            "chen": _session(svc, clock, "chen", 1, CHEN),
            "nobody": _session(svc, clock, "nobody", 2, None)}


@pytest.fixture
def chen(app, ids) -> Browser:
    """A second browser, logged in as dr.chen (a clinician, not an admin)."""
    other = Browser(app.test_client())
    assert other.login(CHEN, CHEN_PASSPHRASE).status_code == 302
    return other


def _version(page: str) -> str:
    return re.search(r'name="version" value="([^"]+)"', page).group(1)


def _sign(browser: Browser, session_id: int):
    page = browser.get(f"/sessions/{session_id}").text
    return browser.submit(f"/sessions/{session_id}/note", {
        "version": _version(page), "action": "sign", "reviewed": "yes",
        "section-subjective": "Reported.", "section-assessment": "Reviewed.",
        "section-plan": "Planned."}, page=f"/sessions/{session_id}")


# --- a colleague's session does not exist for you --------------------------------------------

READ_URLS = ["/sessions/{}", "/sessions/{}/export", "/sessions/{}/export?transcript=1",
             "/sessions/{}/export.txt", "/sessions/{}/export.md", "/sessions/{}/delete"]
WRITE_URLS = {"/sessions/{}/note": {"action": "save", "section-plan": "overwritten"},
              "/sessions/{}/addendum": {"text": "not mine"},
              "/sessions/{}/details": {"label": "stolen", "consent": "yes"},
              "/sessions/{}/delete": {"confirm_date": START.astimezone().date().isoformat()},
              "/sessions/{}/share": {"user": CHEN},
              "/sessions/{}/unshare": {"user": CHEN},
              "/sessions/{}/assign": {"user": CHEN},
              "/sessions/{}/claim": {}}


@pytest.mark.parametrize("url", READ_URLS)
def test_a_colleagues_session_answers_404_like_a_missing_one(chen, ids, url):
    theirs = chen.get(url.format(ids["rivera"]))
    missing = chen.get(url.format(999_999))
    assert theirs.status_code == missing.status_code == 404
    assert "There is no such session" in theirs.text
    assert LABELS["rivera"] not in theirs.text and WORDS["rivera"] not in theirs.text


@pytest.mark.parametrize("url", list(WRITE_URLS))
def test_no_change_reaches_a_colleagues_session(chen, svc, ids, url):
    before = svc.storage.get_session(ids["rivera"])
    note = svc.storage.load_note(ids["rivera"])["note_enc"]
    response = chen.submit(url.format(ids["rivera"]), WRITE_URLS[url])
    assert response.status_code == 404
    assert svc.storage.get_session(ids["rivera"]) == before
    assert svc.storage.load_note(ids["rivera"])["note_enc"] == note
    assert svc.storage.shared_with(ids["rivera"]) == []


def test_the_list_shows_own_sessions_and_unassigned_ones_without_their_words(chen, ids):
    page = chen.get("/sessions").text
    rows = re.findall(r'data-testid="session-row" data-session-id="(\d+)"', page)
    listed = re.findall(r'data-testid="listed-row" data-session-id="(\d+)"', page)
    assert rows == [str(ids["chen"])]
    assert listed == [str(ids["nobody"])] and 'data-testid="claim"' in page
    assert LABELS["chen"] in page
    assert LABELS["rivera"] not in page and LABELS["nobody"] not in page
    assert f'data-session-id="{ids["rivera"]}"' not in page
    assert "2 sessions" in page


def test_search_finds_only_your_own_sessions(chen, ids):
    def hits(word: str) -> list[str]:
        page = chen.get("/search", query_string={"q": word}).text
        return re.findall(r'data-testid="search-hit" data-session-id="(\d+)"', page)

    assert hits(WORDS["chen"]) == [str(ids["chen"])]
    assert hits(WORDS["rivera"]) == []
    assert hits(WORDS["nobody"]) == []
    page = chen.get("/search", query_string={"q": "again"}).text
    assert LABELS["rivera"] not in page and LABELS["nobody"] not in page


# --- claiming, handing over, sharing ------------------------------------------------------------


def test_claiming_an_unassigned_session_makes_it_yours_once(chen, user, svc, ids):
    claimed = chen.submit(f"/sessions/{ids['nobody']}/claim")
    assert claimed.status_code == 302
    assert LABELS["nobody"] in chen.get(f"/sessions/{ids['nobody']}").text
    assert "session.claim" in actions(svc)
    # Too late for anyone else (here the admin): the session stays dr.chen's.
    owner = svc.storage.get_session(ids["nobody"]).owner_id
    again = user.submit(f"/sessions/{ids['nobody']}/claim")
    assert "already belongs to a clinician" in user.get(again.location).text
    assert svc.storage.get_session(ids["nobody"]).owner_id == owner
    assert user.get(f"/sessions/{ids['nobody']}").status_code == 404


def test_handing_a_session_over_is_logged_and_ends_your_access(chen, user, svc, ids):
    handed = user.submit(f"/sessions/{ids['rivera']}/assign", {"user": CHEN},
                         page=f"/sessions/{ids['rivera']}")
    assert handed.status_code == 302
    assert user.get(f"/sessions/{ids['rivera']}").status_code == 404
    assert LABELS["rivera"] in chen.get(f"/sessions/{ids['rivera']}").text
    entry = next(e for e in svc.audit.entries() if e.action == "session.reassign")
    assert entry.session_id == ids["rivera"] and entry.detail == f"{USER} -> {CHEN}"


def test_a_read_only_share_can_read_and_export_but_change_nothing(chen, user, svc, ids):
    session = ids["rivera"]
    shared = user.submit(f"/sessions/{session}/share", {"user": CHEN}, page=f"/sessions/{session}")
    assert shared.status_code == 302
    page = chen.get(f"/sessions/{session}").text
    assert LABELS["rivera"] in page and 'data-testid="read-only-note"' in page
    for form in ("note-form", "details-form", "addendum-form", "delete-link", "share-form"):
        assert f'data-testid="{form}"' not in page
    assert chen.get(f"/sessions/{session}/export.txt").status_code == 200
    hits = re.findall(r'data-testid="search-hit" data-session-id="(\d+)"',
                      chen.get("/search", query_string={"q": WORDS["rivera"]}).text)
    assert hits == [str(session)]
    note = svc.storage.load_note(session)["note_enc"]
    for url in ("/note", "/details", "/addendum", "/delete", "/share", "/assign"):
        refused = chen.submit(f"/sessions/{session}{url}", WRITE_URLS["/sessions/{}" + url])
        assert refused.status_code == 403, url
        assert "read-only" in refused.text or "Only an admin" in refused.text
    assert svc.storage.load_note(session)["note_enc"] == note
    unshared = user.submit(f"/sessions/{session}/unshare", {"user": CHEN},
                           page=f"/sessions/{session}")
    assert unshared.status_code == 302
    assert chen.get(f"/sessions/{session}").status_code == 404
    assert {"session.share", "session.unshare"} <= set(actions(svc))


# --- admins and users ------------------------------------------------------------------------------


def test_only_an_admin_adds_or_removes_users_or_changes_roles(chen, svc, ids):
    page = chen.get("/users").text
    assert 'data-testid="add-user-form"' not in page and 'data-testid="remove-user"' not in page
    removed = chen.submit(f"/users/{USER}/remove", {"heir": CHEN}, page="/users")
    assert removed.status_code == 403 and "Only an admin" in removed.text
    added = chen.submit("/users/add", {"username": "dr.mallory", "passphrase": "x" * 12,
                                       "repeat": "x" * 12}, page="/users")
    assert added.status_code == 403
    promoted = chen.submit(f"/users/{CHEN}/role", {"role": "admin"}, page="/users")
    assert promoted.status_code == 403
    assert {u.username: u.role for u in svc.keys.users()} == {USER: "admin", CHEN: "clinician"}


def test_the_last_admin_stays_and_a_removed_clinicians_sessions_go_to_a_colleague(
        user, chen, svc, ids):
    demoted = user.submit(f"/users/{USER}/role", {"role": "clinician"}, page="/users")
    assert demoted.status_code == 409 and "only admin" in demoted.text
    removed = user.submit(f"/users/{CHEN}/remove", {"heir": USER}, page="/users")
    assert removed.status_code == 302
    assert svc.storage.get_session(ids["chen"]).owner_id is not None
    assert LABELS["chen"] in user.get(f"/sessions/{ids['chen']}").text
    entry = next(e for e in svc.audit.entries() if e.action == "user.remove")
    assert entry.detail == f"{CHEN}; 1 sessions to {USER}"


def test_promoting_a_colleague_lets_the_first_admin_step_down(user, chen, svc, ids):
    assert user.submit(f"/users/{CHEN}/role", {"role": "admin"},
                       page="/users").status_code == 302
    assert user.submit(f"/users/{USER}/role", {"role": "clinician"},
                       page="/users").status_code == 302
    assert {u.username: u.role for u in svc.keys.users()} == {USER: "clinician", CHEN: "admin"}
    assert "user.role" in actions(svc)


# --- signed records -------------------------------------------------------------------------------


def test_a_signed_session_is_deleted_only_by_an_admin_told_what_is_lost(chen, user, svc, ids):
    session = ids["chen"]
    assert _sign(chen, session).status_code == 302
    chen.submit(f"/sessions/{session}/addendum", {"text": "Called back."},
                page=f"/sessions/{session}")
    page = chen.get(f"/sessions/{session}/delete").text
    assert 'data-testid="delete-signed"' in page and "1 addendum" in page
    assert 'data-testid="delete-never-exported"' in page
    assert 'data-testid="delete-form"' not in page and "Only an admin" in page
    date = (START + timedelta(days=1)).astimezone().date().isoformat()
    refused = chen.submit(f"/sessions/{session}/delete", {"confirm_date": date},
                          page=f"/sessions/{session}")
    assert refused.status_code == 403
    assert svc.storage.load_note(session)["signed_at"]
    chen.get(f"/sessions/{session}/export.md")
    # The admin finds it in the list (date and length only) and deletes it.
    listed = user.get("/sessions").text
    assert f'href="/sessions/{session}/delete"' in listed and LABELS["chen"] not in listed
    page = user.get(f"/sessions/{session}/delete").text
    assert 'data-testid="delete-exported"' in page and LABELS["chen"] not in page
    done = user.submit(f"/sessions/{session}/delete", {"confirm_date": date},
                       page=f"/sessions/{session}/delete")
    assert done.status_code == 302
    assert svc.storage.list_sessions(states=(State.SIGNED,)) == []
    entry = next(e for e in svc.audit.entries() if e.action == "session.delete")
    assert entry.detail == f"signed note by {CHEN}, 1 addenda"


def test_an_admin_reassigns_a_colleagues_session_without_reading_it(user, chen, svc, ids):
    listed = user.get("/sessions").text
    assert f'action="/sessions/{ids["chen"]}/assign"' in listed
    assert user.get(f"/sessions/{ids['chen']}").status_code == 404
    moved = user.submit(f"/sessions/{ids['nobody']}/assign", {"user": CHEN})
    assert moved.status_code == 302
    assert LABELS["nobody"] in chen.get(f"/sessions/{ids['nobody']}").text
    entry = next(e for e in svc.audit.entries() if e.action == "session.reassign")
    assert entry.detail == f"unassigned -> {CHEN}"
