"""The note editor's background save (POST /sessions/<id>/note/autosave in web_ui/views/sessions.py).

Sent by web_ui/static/editor.js as the clinician types: the same fields as
"Save draft", the CSRF token in a header, JSON back. Stored encrypted like any
save, never onto a signed note, audited once per stretch of editing, and not
counted as activity for idle logoff (the keepalive reports typing).
"""

from __future__ import annotations

import json
import re

from appliance import age
from tests.conftest import USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    actions,
    app,
    browser,
    clock,
    csrf_token,
    recovery,
    result,
    seed,
    svc,
    user,
)

LINES = [(3.0, "Clinician", "How has the week been?"),
         (8.5, "Client", "Evenings are still the hardest part.")]
WRITTEN = {"section-subjective": "Evenings hard.", "section-assessment": "Stable.",
           "section-plan": "Weekly."}


def _page(user, session_id: int) -> tuple[str, str]:
    """The session page's CSRF token and note version, as editor.js reads them."""
    page = user.get(f"/sessions/{session_id}").text
    return csrf_token(page), re.search(r'name="version" value="([^"]+)"', page).group(1)


def _autosave(user, session_id: int, version: str, token: str | None, **texts):
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["X-CSRFToken"] = token
    data = {"version": version, **{f"section-{k}": v for k, v in texts.items()}}
    return user.post(f"/sessions/{session_id}/note/autosave", data, headers=headers)


def _keepalive(user, token: str) -> None:
    """What the page sends while someone types (app.js): the activity that keeps a login."""
    assert user.post("/keepalive", headers={"X-CSRFToken": token}).status_code == 204


def _texts(svc, session_id: int) -> dict[str, str]:
    blob = svc.storage.load_note(session_id)["note_enc"]
    note = json.loads(age.decrypt(blob, [svc.keys.identity()]))
    return {s["key"]: s["text"] for s in note["sections"]}


def _autosaves(svc) -> int:
    return sum(1 for e in svc.audit.entries() if (e.action, e.detail) == ("note.edit", "autosave"))


def test_an_autosave_stores_the_typed_text_encrypted(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    token, version = _page(user, session_id)
    response = _autosave(user, session_id, version, token, subjective="Sleeps better since May.")
    assert response.status_code == 200, response.text
    assert _texts(svc, session_id)["subjective"] == "Sleeps better since May."
    assert _texts(svc, session_id)["objective"] == "Session length 50 min.", "others kept"
    assert svc.storage.load_note(session_id)["updated_by"] == USER
    assert b"Sleeps better" not in (svc.storage.data_dir / "holdnote.db").read_bytes()
    # The page shows when it was saved, and the version its next save must name.
    local = clock().astimezone().strftime("%H:%M")
    assert response.json["saved_at"] == local and response.json["version"] != version
    assert "Sleeps better since May." in user.get(f"/sessions/{session_id}").text


def test_the_version_an_autosave_returns_lets_save_draft_and_sign_follow(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    token, version = _page(user, session_id)
    newer = _autosave(user, session_id, version, token, plan="Weekly.").json["version"]
    signed = user.post(f"/sessions/{session_id}/note", {
        **WRITTEN, "version": newer, "action": "sign", "reviewed": "yes", "csrf_token": token})
    assert signed.status_code == 302
    assert svc.storage.load_note(session_id)["signed_at"]


def test_an_autosave_over_a_newer_save_from_another_window_is_refused(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    token, version = _page(user, session_id)
    assert _autosave(user, session_id, version, token, plan="From window one.").status_code == 200
    stale = _autosave(user, session_id, version, token, plan="From window two.")
    assert stale.status_code == 409 and "changed in another window" in stale.json["error"]
    unnamed = _autosave(user, session_id, "", token, plan="From a page without a version.")
    assert unnamed.status_code == 400 and "Reload the page" in unnamed.json["error"]
    assert _texts(svc, session_id)["plan"] == "From window one."


def test_an_autosave_never_changes_a_signed_note(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    token, version = _page(user, session_id)
    user.post(f"/sessions/{session_id}/note", {
        **WRITTEN, "version": version, "action": "sign", "reviewed": "yes", "csrf_token": token})
    late = _autosave(user, session_id, version, token, plan="Typed in an old tab.")
    assert late.status_code == 409 and "signed" in late.json["error"]
    assert _texts(svc, session_id)["plan"] == "Weekly."


def test_an_autosave_needs_the_csrf_token(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    _, version = _page(user, session_id)
    forged = _autosave(user, session_id, version, None, plan="Posted by another site.")
    assert forged.status_code == 400
    assert _texts(svc, session_id)["plan"] == ""
    token, _ = _page(user, session_id)
    assert _autosave(user, session_id, version, token, plan="Typed here.").status_code == 200
    assert _texts(svc, session_id)["plan"] == "Typed here."


def test_an_autosave_is_audited_once_per_stretch_of_editing(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    token, version = _page(user, session_id)
    for minute in range(6):  # six saves two minutes apart: one stretch of editing
        _keepalive(user, token)
        version = _autosave(user, session_id, version, token,
                            plan=f"Draft {minute}").json["version"]
        clock.advance(minutes=2)
    assert _autosaves(svc) == 1
    entry = next(e for e in svc.audit.entries() if e.detail == "autosave")
    assert (entry.actor, entry.session_id) == (USER, session_id)
    clock.advance(minutes=10)  # back after a pause: a new stretch
    _keepalive(user, token)
    assert _autosave(user, session_id, version, token, plan="After the pause").status_code == 200
    assert _autosaves(svc) == 2


def test_an_autosave_does_not_keep_an_unattended_login_alive(user, svc, clock, cfg):
    session_id = seed(svc, clock, started=START, res=result(LINES))
    token, version = _page(user, session_id)
    clock.advance(minutes=cfg.web.idle_minutes - 1)
    # The save made just before the idle logoff is stored ...
    assert _autosave(user, session_id, version, token, plan="Last words.").status_code == 200
    assert _texts(svc, session_id)["plan"] == "Last words."
    # ... and the login still ends on time: the page then reloads to the login page.
    clock.advance(minutes=1)
    after = _autosave(user, session_id, version, token, plan="Too late.")
    assert after.status_code == 401 and after.json == {"error": "logged out"}
    assert "logout.idle" in actions(svc)
    assert _texts(svc, session_id)["plan"] == "Last words."
