"""Fixtures and helpers for the web UI's Flask test-client tests.

Loaded by each ``tests/test_web_*.py`` through ``pytest_plugins``. The app
runs on a fake clock (idle logoff and lifetimes are tested by moving it),
against a real data directory, real SQLite, real key slots and real age
encryption. Forms are submitted the way a browser does: fetch the page,
take its CSRF token, post.
"""

from __future__ import annotations

import json
import re
import wave
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher

from appliance import age
from appliance.access.keys import viewer
from appliance.store.db import State
from appliance.transcript import CURRENT_VERSION, TranscriptResult
from tests.conftest import PASSPHRASE, USER
from tests.support.lifecycle import walk_to

HTTPS = "https://localhost"
LAN = "192.168.1.20"
START = datetime(2024, 5, 6, 7, 30, tzinfo=timezone.utc)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class FakeClock:
    """The app's clock; tests move it forward."""

    at: datetime = field(default_factory=lambda: START)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward by ``timedelta(**delta)``."""
        self.at += timedelta(**delta)


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _TOKEN.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


class Browser:
    """A Flask test client that speaks HTTPS from a LAN address and fills in CSRF tokens."""

    def __init__(self, client, address: str = LAN):
        self.client = client
        self.address = address

    def _env(self, kwargs: dict) -> dict:
        kwargs.setdefault("base_url", HTTPS)
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.address})
        return kwargs

    def get(self, path: str, **kwargs):
        """GET as this browser."""
        return self.client.get(path, **self._env(kwargs))

    def post(self, path: str, data: dict | None = None, **kwargs):
        """POST exactly ``data`` (no token added)."""
        return self.client.post(path, data=data or {}, **self._env(kwargs))

    def token(self, page: str = "/login") -> str:
        """A CSRF token for this browser's cookie session, taken from ``page``."""
        response = self.get(page)
        assert response.status_code == 200, (page, response.status_code)
        return csrf_token(response.text)

    def submit(self, path: str, data: dict | None = None, page: str | None = None, **kwargs):
        """POST ``data`` with a fresh CSRF token from ``page`` (default: ``path`` or /login)."""
        fields = dict(data or {})
        fields["csrf_token"] = self.token(page or "/sessions")
        return self.post(path, fields, **kwargs)

    def login(self, username: str = USER, passphrase: str = PASSPHRASE, **kwargs):
        """Log in through the login form."""
        fields = {"username": username, "passphrase": passphrase,
                  "csrf_token": self.token("/login")}
        return self.post("/login", fields, **kwargs)


# --- transcription results ---------------------------------------------------------------


def result(lines: list[tuple[float, str, str]], *, flags: list[dict] | None = None,
           silences: list[dict] | None = None, bookmarks: list[dict] | None = None,
           sections: dict[str, str] | None = None) -> TranscriptResult:
    """A transcription result with the given ``(start, speaker, text)`` lines.

    ``flags``, ``silences`` and ``bookmarks`` are given in their stored JSON form
    (a flag's ``context``, a bookmark's ``speaker`` and ``snippet`` may be left out).
    """
    segments = [{"start": start, "end": start + 4.0, "speaker": speaker, "text": text}
                for start, speaker, text in lines]
    duration = (segments[-1]["end"] + 5) if segments else 60.0
    talk = {}
    for segment in segments:
        talk[segment["speaker"]] = talk.get(segment["speaker"], 0) + 4.0
    total = sum(talk.values()) or 1
    texts = {"subjective": "", "objective": "Session length 50 min.", "assessment": "",
             "plan": "", **(sections or {})}
    return TranscriptResult.from_json({
        "version": CURRENT_VERSION, "duration_s": duration, "model": "tiny.en", "language": "en",
        "segments": segments, "silences": silences or [],
        "metrics": {"duration_s": duration, "talk_time_s": talk,
                    "talk_share": {k: v / total for k, v in talk.items()},
                    "longest_silence_s": 12.0, "words_per_minute": {k: 120.0 for k in talk},
                    "turns": max(0, len(segments) - 1), "word_count": 42,
                    "words": dict.fromkeys(talk, 21), "silence_count": len(silences or []),
                    "silence_total_s": sum(s["end"] - s["start"] for s in silences or [])},
        "flags": [{"context": "", **flag} for flag in flags or []],
        "bookmarks": [{"speaker": None, "snippet": "", **mark} for mark in bookmarks or []],
        "note": {"template": "SOAP", "status": "draft", "header": "Individual session",
                 "sections": [{"key": k, "title": k.capitalize(), "text": v,
                               "auto": k == "objective"} for k, v in texts.items()]},
        "salvaged": False, "warnings": [],
    })


def encrypt_json(value: object, recipient) -> bytes:
    """A JSON value encrypted to the practice recipient, as the overnight job stores it."""
    return age.encrypt(json.dumps(value).encode("utf-8"), [recipient])


def _dummy_audio(path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 1600)


def seed(svc, clock: FakeClock, *, started: datetime, state: State = State.DRAFT,
         res: TranscriptResult | dict | None = None, label: str | None = None,
         consent: bool = False, owner: str | None = USER,
         duration_s: float = 3000.0, **fields) -> int:
    """A session as the recorder and the overnight job leave it; its id.

    It belongs to the account ``owner`` (``None``: unassigned, to be claimed).

    The audio file is a small dummy on disk, so deletion can be checked.
    ``res`` (a :func:`result`) is stored with its draft note and flag summary; a
    dict is stored as it is, as an earlier release wrote it.
    """
    saved = clock.at
    clock.at = started
    account = viewer(svc.storage, owner) if owner else None
    session = svc.storage.create_session(owner_id=account.user_id if account else None)
    clock.at = saved
    _dummy_audio(session.audio_path)
    recipient = svc.keys.recipient()
    changes = {"duration_s": duration_s, "consent": int(consent),
               "ended_at": started + timedelta(seconds=duration_s), **fields}
    if label is not None:
        changes["label_enc"] = age.encrypt(label.encode("utf-8"), [recipient])
    if res is not None:
        stored = res.to_json() if isinstance(res, TranscriptResult) else res
        svc.storage.save_transcript(session.id, encrypt_json(stored, recipient))
        svc.storage.save_note(session.id, encrypt_json(stored["note"], recipient), "holdnote")
        counts: dict[str, int] = {}
        for flag in stored.get("flags") or []:
            counts[flag["category"]] = counts.get(flag["category"], 0) + 1
        if counts:
            changes["flags_enc"] = encrypt_json(
                [{"category": k, "count": v} for k, v in counts.items()], recipient)
    walk_to(svc.storage, session.id, state, **changes)
    return session.id


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock, starting at a fixed morning."""
    return FakeClock()


@pytest.fixture
def app(cfg, clock):
    """The web app on the test configuration and the fake clock."""
    from web_ui import create_app

    app = create_app(cfg, now=clock)
    # No background index builds that would outlive the test's data directory;
    # test_web_search.py checks the warming itself.
    app.config["HOLDNOTE_WARM_SEARCH"] = False
    return app


@pytest.fixture
def svc(app):
    """The app's services (storage, keys, audit …), with a cheap Argon2 cost.

    Like the scrypt work factor of 10 in the test configuration: the same
    real hash function with parameters that take milliseconds, not the
    production 64 MiB and three passes (about a second per login on a shared
    CI machine).
    """
    from web_ui.views.context import EXTENSION

    services = app.extensions[EXTENSION]
    services.keys.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return services


@pytest.fixture
def recovery(svc) -> str:
    """Practice keys and the first clinician created (device unlocked); the recovery key."""
    return svc.keys.init(USER, PASSPHRASE)


@pytest.fixture
def browser(app, svc) -> Browser:
    """A browser on the office LAN, not logged in."""
    return Browser(app.test_client())


CHEN, CHEN_PASSPHRASE = "dr.chen", "a passphrase for dr chen"


def colleague(app, svc) -> Browser:
    """Dr Chen, a second clinician: added, and logged in in a browser of their own."""
    svc.keys.add_user(CHEN, CHEN_PASSPHRASE, svc.keys.identity())
    chen = Browser(app.test_client())
    assert chen.login(CHEN, CHEN_PASSPHRASE).status_code == 302
    return chen


@pytest.fixture
def user(browser, recovery) -> Browser:
    """A browser logged in as the first clinician."""
    response = browser.login()
    assert response.status_code == 302, response.text
    return browser


def actions(svc) -> list[str]:
    """The audit log's actions, oldest first."""
    return [e.action for e in svc.audit.entries(newest_first=False)]
