"""The network boundary, Host check, headers, CSRF, login-required, XSS and id tampering."""

from __future__ import annotations

import dataclasses
import re
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, Browser, FakeClock, actions, app, browser, clock, recovery, result, seed, svc, user)
from web_ui import create_app

TEMPLATES = Path(__file__).resolve().parents[2] / "web_ui" / "templates"
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

# Every page a logged-in clinician can GET, and every form they can POST.
PAGES = ["/", "/sessions", "/sessions/1", "/sessions/1/export", "/sessions/1/export.txt",
         "/sessions/1/export.md", "/sessions/1/delete", "/search?q=x", "/device",
         "/device/status.json", "/users", "/account/passphrase", "/audit"]
FORMS = ["/logout", "/lock", "/keepalive", "/sessions/1/note", "/sessions/1/addendum",
         "/sessions/1/details", "/sessions/1/delete", "/device/recorder", "/users/add",
         "/users/dr.rivera/remove", "/account/passphrase", "/setup/confirm"]


# --- network boundary ---------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "192.168.1.20", "10.4.5.6", "172.16.0.9",
                                     "172.31.255.1", "169.254.10.10", "::1", "fe80::1",
                                     "fd12:3456::7", "::ffff:192.168.1.9"])
def test_office_network_addresses_are_served(app, svc, recovery, address):
    assert Browser(app.test_client(), address).get("/login").status_code == 200


@pytest.mark.parametrize("address", ["8.8.8.8", "100.64.0.1", "172.32.0.1", "192.0.2.5",
                                     "2001:db8::1", "::ffff:8.8.8.8", "not-an-address"])
def test_other_addresses_get_403_and_an_audit_entry(app, svc, recovery, address):
    response = Browser(app.test_client(), address).get("/login")
    assert response.status_code == 403
    assert "office network" in response.text
    entry = svc.audit.entries(limit=1)[0]
    assert (entry.action, entry.source) == ("network.denied", address)


def test_refusals_are_audited_once_per_address_not_per_request(app, svc, clock):
    outsider = Browser(app.test_client(), "8.8.8.8")
    for _ in range(5):
        assert outsider.get("/healthz").status_code == 403
        assert outsider.post("/login").status_code == 403  # before the CSRF check
    assert actions(svc).count("network.denied") == 1
    clock.advance(minutes=6)
    outsider.get("/healthz")
    assert actions(svc).count("network.denied") == 2


def test_forwarded_headers_are_never_believed(app, svc, recovery):
    spoofed = Browser(app.test_client(), "8.8.8.8")
    assert spoofed.get("/login", headers={"X-Forwarded-For": "192.168.1.2",
                                          "X-Real-IP": "192.168.1.2"}).status_code == 403
    local = Browser(app.test_client(), "192.168.1.2")
    assert local.get("/login", headers={"X-Forwarded-For": "8.8.8.8"}).status_code == 200


def test_allowed_networks_extend_the_boundary(tmp_path):
    cfg = make_config(tmp_path, web={"allowed_networks": ["100.64.0.0/10"]})
    app = create_app(cfg, now=FakeClock())
    # Served (503: /healthz also reports that no recorder runs in this test), not refused.
    assert Browser(app.test_client(), "100.64.3.4").get("/healthz").status_code in (200, 503)
    assert Browser(app.test_client(), "100.128.0.1").get("/healthz").status_code == 403


@pytest.mark.parametrize("host,ok", [
    ("localhost", True), ("localhost:8443", True), ("127.0.0.1:8443", True),
    ("192.168.1.5", True), ("[fe80::1]:8443", True), (f"{socket.gethostname()}.local", True),
    (f"{socket.gethostname().upper()}:8443", True), ("evil.example.com", False),
    ("holdnote.evil.example", False), ("localhost.evil.example:8443", False),
])
def test_unexpected_host_headers_are_refused(browser, recovery, host, ok):
    response = browser.get("/login", headers={"Host": host})
    assert (response.status_code == 200) is ok, (host, response.status_code)
    if not ok:
        assert response.status_code == 400


def test_allowed_hosts_are_accepted(tmp_path):
    cfg = make_config(tmp_path, web={"allowed_hosts": ["notes.practice.lan"]})
    client = Browser(create_app(cfg, now=FakeClock()).test_client())
    served = client.get("/healthz", headers={"Host": "notes.practice.lan:8443"}).status_code
    assert served in (200, 503)  # 503: no recorder runs in this test; served, not refused
    assert client.get("/healthz", headers={"Host": "other.practice.lan"}).status_code == 400


# --- headers -------------------------------------------------------------------------------------


def test_every_page_has_the_security_headers(user):
    for path in ["/login", "/sessions", "/device", "/healthz", "/nope"]:
        headers = user.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert headers["Cache-Control"] == "no-store"


def test_static_files_are_cacheable_but_still_protected(user):
    with user.get("/static/app.css") as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] != "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_templates_contain_no_inline_script_or_style():
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\sstyle\s*=", text), template.name
        assert "<style" not in text, template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "http://" not in text and "https://" not in text, f"{template.name}: no CDN"


# --- login required and CSRF -------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_requires_a_login(browser, recovery, path):
    response = browser.get(path)
    if path.endswith(".json"):
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert "/login?next=" in response.headers["Location"]


@pytest.mark.parametrize("path", [p for p in FORMS if p != "/logout"])
def test_every_form_requires_a_login(browser, recovery, path):
    response = browser.post(path, {"csrf_token": browser.token("/login")})
    assert response.status_code in (302, 401)
    assert response.status_code == 401 or "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", FORMS + ["/login", "/setup"])
def test_every_form_rejects_a_post_without_a_csrf_token(user, svc, clock, path):
    seed(svc, clock, started=START, res=result([(1.0, "Client", "hello")]))
    response = user.post(path, {"username": "x", "passphrase": "y", "cmd": "start",
                                "confirm_date": "2024-05-06", "text": "t"})
    assert response.status_code == 400
    assert "form has expired" in response.text
    assert user.get("/sessions/1").status_code == 200, "nothing happened: still logged in"


def test_a_token_from_another_browser_is_rejected(user, app, svc, clock):
    seed(svc, clock, started=START, res=result([(1.0, "Client", "hello")]))
    other = Browser(app.test_client(), "192.168.1.77")
    foreign = other.token("/login")
    response = user.post("/sessions/1/details", {"csrf_token": foreign, "label": "changed"})
    assert response.status_code == 400


# --- XSS ------------------------------------------------------------------------------------------------


def test_client_text_everywhere_renders_inert(user, svc, clock):
    res = result([(1.0, "Client", f"I said {XSS} today"), (6.0, XSS, "who is this")],
                 flags=[{"category": XSS, "start": 1.0, "end": 5.0, "speaker": XSS,
                         "quote": XSS, "negated": False, "term": XSS}],
                 bookmarks=[{"offset": 2.0, "segment_index": 0, "text": XSS}],
                 sections={"subjective": XSS})
    res = dataclasses.replace(res, warnings=(XSS,))
    session_id = seed(svc, clock, started=START, res=res, label=XSS)
    pages = {
        "list": user.get("/sessions").text,
        "session": user.get(f"/sessions/{session_id}").text,
        "search": user.get("/search?q=alert").text,
        "export": user.get(f"/sessions/{session_id}/export?transcript=1").text,
    }
    for name, page in pages.items():
        assert XSS not in page, name
        assert ESCAPED in page, name
    assert "<script>" not in pages["session"].replace('<script src=', '')


def test_exports_are_plain_text_not_html(user, svc, clock):
    session_id = seed(svc, clock, started=START, res=result([(1.0, "Client", XSS)]), label=XSS)
    response = user.get(f"/sessions/{session_id}/export.md?transcript=1")
    assert response.mimetype == "text/markdown"
    assert "<script>" not in response.text, "Markdown viewers render raw HTML"
    assert r"\<script\>alert(1)\</script\>" in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response.headers["Content-Disposition"]


# --- ids and paths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/sessions/999", "/sessions/0", "/sessions/-1", "/sessions/abc", "/sessions/1.5",
    "/sessions/99999999999999999999999", "/sessions/9223372036854775808",
    "/sessions/1/export.html", "/sessions/1/export.exe", "/sessions/999/export.txt",
    "/sessions/999/delete", "/sessions/1/../../etc/passwd", "/static/../auth.py",
    "/static/%2e%2e/auth.py", "/static/..%2fauth.py", "/sessions/%2e%2e",
])
def test_tampered_ids_and_paths_are_not_found(user, svc, clock, path):
    seed(svc, clock, started=START, res=result([(1.0, "Client", "hello")]))
    response = user.get(path)
    assert response.status_code in (404, 308) and b"import" not in response.data
    if response.status_code == 308:  # werkzeug normalised the path: it must stay inside
        assert user.get(response.headers["Location"]).status_code == 404


@pytest.mark.parametrize("path", ["/sessions/999/note", "/sessions/999/addendum",
                                  "/sessions/999/details", "/sessions/999/delete",
                                  "/sessions/99999999999999999999999/note"])
def test_forms_for_missing_sessions_are_not_found(user, path):
    response = user.submit(path, {"text": "x", "label": "x", "confirm_date": "2024-05-06"})
    assert response.status_code == 404


def test_another_sessions_version_token_cannot_overwrite_a_note(user, svc, clock):
    first = seed(svc, clock, started=START, res=result([(1.0, "Client", "one")]))
    second = seed(svc, clock, started=START + timedelta(hours=1),
                  res=result([(1.0, "Client", "two")]))
    page = user.get(f"/sessions/{first}").text
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    response = user.submit(f"/sessions/{second}/note", {
        "version": version, "section-subjective": "overwritten", "action": "save"})
    assert response.status_code == 409
    assert "overwritten" not in user.get(f"/sessions/{second}/export.txt").text
