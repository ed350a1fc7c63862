"""Which failure counter a web form's attempt counts in, and the browser cookie behind it.

The rule itself is :mod:`appliance.access.failures`. What the web page adds
is the *device cookie*: after a successful login the browser gets a signed,
long-lived cookie naming the accounts that have logged in from it. An attempt
on such an account from that browser counts in its own row, so a colleague
(or anyone on the LAN) guessing that account elsewhere cannot lock its owner
out of their own computer. The cookie is signed with the app's secret key, so
it cannot be forged, and it carries no secret: stealing it gives no login.
"""

from __future__ import annotations

import secrets

from flask import after_this_request, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer

from appliance.access import failures
from appliance.access.failures import Counter
from appliance.access.keys import viewer
from appliance.errors import TooManyAttemptsError
from web_ui.views.context import services

COOKIE = "__Host-holdnote-device"
SALT = "holdnote.device"
MAX_AGE_S = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days
MAX_ACCOUNTS = 20  # a shared computer; the oldest names drop off beyond this


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key or "", salt=SALT)


def _device() -> dict:
    """The browser's device cookie: ``{"id": …, "users": […]}``, empty if absent or forged."""
    try:
        value = _signer().loads(request.cookies.get(COOKIE, ""))
    except BadSignature:
        return {}
    ok = (isinstance(value, dict) and isinstance(value.get("id"), str)
          and isinstance(value.get("users"), list))
    return value if ok else {}


def known_here(username: str) -> str | None:
    """This browser's id if ``username`` has logged in from it before, else None."""
    device = _device()
    return device["id"] if failures.user_key(username) in device.get("users", []) else None


def counter_for(username: str | None) -> Counter:
    """The row this request's attempt on ``username`` counts in (None: a setup code)."""
    known = username is not None and viewer(services().storage, username) is not None
    device = known_here(username) if known and username else None
    return failures.counter(username, known=known, address=request.remote_addr, device=device)


def remember(username: str) -> None:
    """After a successful login: this browser now knows ``username`` (set on the response)."""
    device = _device() or {"id": secrets.token_urlsafe(16), "users": []}
    key = failures.user_key(username)
    users = [u for u in device["users"] if u != key] + [key]
    value = _signer().dumps({"id": device["id"], "users": users[-MAX_ACCOUNTS:]})

    @after_this_request
    def set_cookie(response):
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, secure=True, httponly=True,
                            samesite="Strict", path="/")
        return response


def refused(template: str, error: TooManyAttemptsError, **context):
    """The page again with the refusal, as 429 with Retry-After (no passphrase was checked)."""
    return (render_template(template, error=str(error), **context), 429,
            {"Retry-After": str(error.retry_after_s)})
