"""The wrong-passphrase limits under real concurrency: gunicorn workers in separate processes.

Each worker process has its own connections to the one SQLite database, so
only a check-and-count in one transaction can keep concurrent guesses within
the rule; an in-process test cannot show that. Production Argon2 settings.
"""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from appliance.access import failures
from appliance.store.db import Storage
from tests.browser.server import Server, free_port, init_tls, tls_context, write_config
from tests.conftest import PASSPHRASE, USER
from tests.support.seed import init_practice

MAX_FAILURES = 5  # the configuration's default, named here for the assertions


class Client:
    """One browser: its own cookie jar, over TLS to the device's certificate."""

    def __init__(self, server: Server):
        self.base = server.url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=server.context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, fields: dict | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read().decode()

    def token(self, path: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', self.open(path)[1]).group(1)

    def login(self, passphrase: str) -> int:
        return self.open("/login", {"username": USER, "passphrase": passphrase,
                                    "csrf_token": self.token("/login")})[0]


@pytest.fixture
def server(tmp_path):
    config = write_config(tmp_path / "holdnote.toml", tmp_path, tmp_path / "tls", free_port(),
                          web={"workers": 2})
    cert = init_tls(config)
    init_practice(Storage(tmp_path / "data"), tmp_path / "run")
    running = Server(config, cert, tmp_path / "gunicorn.log")
    yield running
    running.stop()


def at_once(count: int, prepare, send) -> list[int]:
    """``send(prepare(n))`` from ``count`` threads released together; the statuses."""
    ready = [prepare(n) for n in range(count)]
    start = threading.Barrier(count)
    statuses: list[int] = []

    def run(item) -> None:
        start.wait()
        statuses.append(send(item))

    threads = [threading.Thread(target=run, args=(item,)) for item in ready]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.slow
def test_30_concurrent_wrong_logins_get_no_more_checks_than_the_rule_allows(server):
    def prepare(n: int):
        client = Client(server)
        return client, client.token("/login"), n

    def send(item) -> int:
        client, token, n = item
        return client.open("/login", {"username": USER, "passphrase": f"wrong guess {n}",
                                      "csrf_token": token})[0]

    statuses = at_once(30, prepare, send)
    checked = statuses.count(401)
    assert failures.FREE_FAILURES + 1 <= checked <= MAX_FAILURES, statuses
    assert statuses.count(429) == 30 - checked, server.log_tail()


@pytest.mark.slow
def test_concurrent_wrong_passphrase_changes_are_refused_not_slept_on(server):
    user = Client(server)
    assert user.login(PASSPHRASE) == 200
    tokens = [user.token("/account/passphrase") for _ in range(8)]

    def send(token: str) -> int:
        return user.open("/account/passphrase", {
            "current": "not my passphrase", "new": "a brand new passphrase",
            "repeat": "a brand new passphrase", "csrf_token": token})[0]

    statuses = at_once(8, lambda n: tokens[n], send)
    checked = statuses.count(403)
    assert failures.FREE_FAILURES + 1 <= checked <= MAX_FAILURES, statuses
    assert statuses.count(429) == 8 - checked, server.log_tail()
