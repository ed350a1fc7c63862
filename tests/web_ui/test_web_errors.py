"""Error pages and dead ends (web_ui/views/errors.py): the layout, the menu, a sentence to act on."""

from __future__ import annotations

from tests.support.web_support import (  # noqa: F401 - fixtures
    START, app, browser, clock, recovery, result, seed, svc, user)

LINES = [(3.0, "Clinician", "How has the week been?")]


def _menu(page: str) -> bool:
    return 'data-testid="nav-sessions"' in page and 'data-testid="logout"' in page


def test_opening_the_address_a_failed_sign_left_goes_back_to_the_note(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    # Signing without the review box re-shows the page at the form's address …
    failed = user.submit(f"/sessions/{session_id}/note", {"action": "sign"},
                         page=f"/sessions/{session_id}")
    assert failed.status_code == 400
    # … and opening that address later (reload, history, a bookmark) is a GET.
    response = user.get(f"/sessions/{session_id}/note")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/sessions/{session_id}#note")
    page = user.get(f"/sessions/{session_id}").text
    assert "only receives a form" in page and "Nothing was sent or changed" in page


def test_other_form_addresses_lead_to_their_page(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    assert user.get(f"/sessions/{session_id}/addendum").headers["Location"].endswith(
        f"/sessions/{session_id}#addenda")
    assert user.get("/device/recorder").headers["Location"].endswith("/device")
    assert user.get("/lock").headers["Location"].endswith("/")


def test_an_unknown_address_is_explained_inside_the_layout(user):
    response = user.get("/sessions/7/nonsense")
    assert response.status_code == 404
    assert _menu(response.text), "the menu is there to find the way back"
    assert "There is no page at this address" in response.text
    assert "requested URL was not found on the server" not in response.text


def test_a_method_that_no_page_takes_is_explained_inside_the_layout(user):
    response = user.client.put("/sessions", base_url="https://localhost",
                               environ_base={"REMOTE_ADDR": user.address})
    assert response.status_code == 405
    assert _menu(response.text) and "nothing was changed" in response.text
    assert "Method Not Allowed" not in response.text


def test_an_unexpected_failure_is_a_page_with_the_menu_not_a_bare_500(app, browser, recovery):
    def broken():
        raise RuntimeError("a bug")

    # A real view that fails the way a bug would; routes must exist before the first request.
    app.add_url_rule("/broken-for-test", "broken_for_test", broken)
    assert browser.login().status_code == 302
    response = browser.get("/broken-for-test")
    assert response.status_code == 500
    assert _menu(response.text)
    assert "the other pages still work" in response.text and "Device page" in response.text
    assert "a bug" not in response.text, "no internals on the page"


def test_a_session_that_does_not_exist_keeps_its_own_message(user):
    response = user.get("/sessions/999")
    assert response.status_code == 404 and _menu(response.text)
    assert "no such session" in response.text
