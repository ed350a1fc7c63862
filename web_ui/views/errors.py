"""Error pages: inside the site's layout, with the menu and a sentence a person can act on.

A form that failed (say, signing without ticking the box) leaves the
browser at the form's address; opening that address later is a GET on a
POST-only route. Instead of "405 Method Not Allowed" the person is taken to
the page the form belongs to.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, flash, g, redirect, render_template, request, session
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RequestRedirect
from werkzeug.routing.exceptions import HTTPException as RoutingHTTPException

from appliance.access.logins import Login
from web_ui.views.auth import SESSION_KEY
from web_ui.views.context import services

log = logging.getLogger(__name__)

# Said instead of Werkzeug's generic descriptions, which talk about servers and URLs.
SENTENCES: dict[int, tuple[str, str]] = {
    400: ("That request could not be understood", "Go back, reload the page and try again."),
    403: ("Not allowed", "Your account may not open this page."),
    404: ("Nothing here", (
        "There is no page at this address: the link may be old, or what it pointed to was "
        "deleted. Use the menu above to find what you need.")),
    405: ("This address cannot be opened that way", (
        "It takes what a form on another page sends, or it was asked for in a way it does "
        "not support; nothing was changed. Use the menu above to go on.")),
    413: ("Too much text", (
        "That form holds more than a note can take. Shorten it and try again.")),
    500: ("Something went wrong on the device", (
        "This page could not be prepared. The problem was logged; the other pages still "
        "work. If it happens again, tell IT: the Device page lists recent problems.")),
}
# Where a form's anchor is on the page it belongs to (/sessions/7/note -> /sessions/7#note).
ANCHORS = {"note": "#note", "addendum": "#addenda", "details": "#note"}


def _identify_viewer() -> None:
    """Who is looking, for the menu: routing errors happen before the login check names them."""
    if g.get("user"):
        return
    token = session.get(SESSION_KEY)
    if not token:
        return
    try:
        state = services().logins.check(token, touch=False)
    except Exception:
        log.exception("could not check the login for an error page")
        return
    if isinstance(state, Login):
        g.user = state.username


def _wording(error: HTTPException) -> tuple[str, str]:
    """The title and sentence: the view's own message, else ours, else Werkzeug's."""
    code = error.code or 500
    title, sentence = SENTENCES.get(code, (error.name, error.description or ""))
    if error.description and error.description != type(error).description:
        sentence = error.description  # abort(404, "There is no such session…") says it best
    return title, sentence


def error_page(error: HTTPException):
    """The error page in the site layout (JSON for the page's scripts)."""
    code = error.code or 500
    title, sentence = _wording(error)
    if code == 400 and error.description == type(error).description:
        # No view said why (a body cut short, a missing field): the journal names the cause.
        # Werkzeug raises ClientDisconnected from inside the failed read: its context
        # is what the socket said (a timeout, a TLS error, a reset).
        log.warning("could not understand %s %s: %s: %s (while handling %r)", request.method,
                    request.path, type(error).__name__, error, error.__context__)
    if request.accept_mimetypes.best == "application/json" or request.path.endswith(".json"):
        return {"error": sentence}, code
    _identify_viewer()
    try:
        return render_template("error.html", code=code, title=title, message=sentence), code
    except Exception:
        log.exception("the error page for %s could not be rendered", code)
        return f"{title}. {sentence}", code, {"Content-Type": "text/plain; charset=utf-8"}


def page_for(path: str) -> str | None:
    """The nearest page above a POST-only ``path`` that answers GET, with the form's anchor."""
    adapter = current_app.url_map.bind("localhost")
    parts = [part for part in path.split("/") if part]
    for end in range(len(parts) - 1, -1, -1):
        candidate = "/" + "/".join(parts[:end])
        try:
            adapter.match(candidate, method="GET")
        except RequestRedirect:
            return None
        except RoutingHTTPException:
            continue
        return candidate + (ANCHORS.get(parts[end], "") if end == len(parts) - 1 else "")
    return None


def method_not_allowed(error: MethodNotAllowed):
    """GET on a form's address: go to the page the form is on, and say so."""
    if request.method in ("GET", "HEAD"):
        target = page_for(request.path)
        if target is not None:
            flash("That address only receives a form, so you were brought to the page it "
                  "belongs to. Nothing was sent or changed.", "info")
            return redirect(target)
    return error_page(error)


def csrf_failed(error: CSRFError):
    """A form sent with an old or missing token."""
    log.warning("CSRF check failed for %s %s: %s", request.method, request.path,
                error.description)
    _identify_viewer()
    return render_template("error.html", code=400, title="This form has expired", message=(
        "The page was open too long or you were logged out meanwhile. Go back, "
        "reload the page and try again.")), 400


def install(app: Flask) -> None:
    """Register the handlers (the CSRF one first: it is also an HTTP 400)."""
    app.register_error_handler(CSRFError, csrf_failed)
    app.register_error_handler(MethodNotAllowed, method_not_allowed)
    app.register_error_handler(HTTPException, error_page)
