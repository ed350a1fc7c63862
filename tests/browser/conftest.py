"""Browser tests: Playwright driving Debian's chromium against a real gunicorn over TLS.

Two servers per test run, both started as the appliance starts its web page
(``holdnote web``, which execs gunicorn with TLS) on free loopback ports:

* ``fresh_device``: a device straight after install.sh: no account, a
  one-time setup code issued. For the first-run tests.
* ``device``: a device in use: practice keys and a clinician account, and
  a week of sessions seeded the way the recorder and the overnight job store
  them (see ``tests/support/seed.py``). For everything else.

Both share one certificate made by ``holdnote web init-tls``; chromium is
told to accept exactly that key (``--ignore-certificate-errors-spki-list``)
instead of ignoring every certificate error, and a test checks the served
certificate against the fingerprint the command printed.

Screenshots go to ``test-artifacts/screenshots/`` (ignored by git).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.access.setup_code import SetupCodes
from appliance.store.db import State, Storage
from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    LISTENING_GAP,
    NOTE_WORD,
    SCREENSHOTS,
    TIMEOUT_MS,
    TRANSCRIPT_WORD,
    USER,
    XSS,
    login,
)
from tests.browser.server import Certificate, Server, free_port, init_tls, write_config
from tests.support import seed


@pytest.fixture(scope="session")
def playwright_api():
    """The Playwright driver, or skip when the package or Debian's chromium is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; make test does)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    with sync_api.sync_playwright() as api:
        yield api


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> Certificate:
    """One certificate for both servers, from ``holdnote web init-tls``."""
    root = tmp_path_factory.mktemp("tls")
    config = write_config(root / "holdnote.toml", root, root / "tls", free_port())
    return init_tls(config)


@pytest.fixture(scope="session")
def browser(playwright_api, tls_cert):
    """Debian's chromium, trusting exactly the test server's key."""
    chromium = playwright_api.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={tls_cert.spki_sha256_b64}"])
    yield chromium
    chromium.close()


def _configure(tmp_path_factory, name: str, cert: Certificate, **sections) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp(name)
    config = write_config(root / "holdnote.toml", root, cert.path.parent, free_port(),
                          **sections)
    return config, root


@dataclass
class Device:
    """A running server and what the test knows about its data directory."""

    server: Server
    storage: Storage  # the same database the server uses (real clock)
    keys: KeyStore
    seeded: Seeded | None = None
    setup_code: str | None = None

    @property
    def url(self) -> str:
        """https://localhost:<port>"""
        return self.server.url

    def audit_entries(self) -> list:
        """The audit log as the device holds it, newest first."""
        return AuditLog(self.storage).entries()


@dataclass
class Seeded:
    """What the seeded device holds, for tests to look for."""

    long: int  # draft, 50 min, risk flags, bookmarks, silences
    sign_me: int  # draft that a test signs
    xss: int  # draft whose transcript, note and label hold markup
    waiting: int  # recorded, waiting for tonight (device was locked)
    transcribing: int
    failed: int
    interrupted: int
    delete_me: int  # recorded, with an encrypted recording on disk
    dates: dict[int, str]
    labels: dict[int, str]


def _seed(data_dir: Path, runtime_dir: Path) -> Seeded:
    clock = seed.Clock()
    storage = Storage(data_dir, now=clock)
    seed.init_practice(storage, runtime_dir)
    recipient = KeyStore(storage, runtime_dir).recipient()
    # "Today" is the last day whose 09:00-12:00 sessions are already over.
    today = (datetime.now(timezone.utc) - timedelta(hours=13)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    ids, labels = {}, {}

    def add(name, days_ago, hour, label, **kwargs):
        started = today - timedelta(days=days_ago) + timedelta(hours=hour - 9)
        ids[name] = seed.add_session(storage, clock, recipient, started_at=started,
                                     label=label, **kwargs)
        labels[ids[name]] = label

    long = seed.transcript_result(50, seed=1, extra=[(400, seed.CLIENT,
                                  f"We made {TRANSCRIPT_WORD} with my grandmother on Sundays.")])
    long = seed.with_first_section(
        long, f"Client describes the {NOTE_WORD} walk as the calmest part of the week.")
    xss = seed.transcript_result(20, seed=3, flags=False, extra=[(60, seed.CLIENT, XSS)])
    xss = seed.with_first_section(xss, XSS)
    add("long", 1, 10, "A.B. 2024-031", result=long, consent=True)
    add("sign_me", 2, 14, "C.D. 2024-044", result=seed.transcript_result(45, seed=2),
        consent=True)
    add("xss", 3, 11, XSS, result=xss)
    add("waiting", 0, 9, "E.F. 2024-052", state=State.RECORDED,
        waiting_reason="Waiting: the device was locked at 00:30; log in to let it run.")
    add("transcribing", 0, 11, "G.H. 2024-053", state=State.TRANSCRIBING, progress=0.4)
    add("failed", 4, 16, "I.J. 2024-017", state=State.FAILED, duration_s=1800,
        error="The recording could not be decrypted: the key does not match. Tell IT.")
    add("interrupted", 5, 15, "K.L. 2024-060", state=State.INTERRUPTED, duration_s=1260)
    add("delete_me", 6, 12, "M.N. 2024-061", state=State.RECORDED, duration_s=2700)
    dates = {i: storage.get_session(i).started_at.astimezone().strftime("%Y-%m-%d")
             for i in ids.values()}
    return Seeded(**ids, dates=dates, labels=labels)


@pytest.fixture(scope="session")
def device(tmp_path_factory, tls_cert) -> Iterator[Device]:
    """A device in use: keys, the clinician dr.rivera and a week of sessions.

    The device starts locked, as after a reboot: the first login unlocks it.
    """
    config, root = _configure(tmp_path_factory, "device", tls_cert)
    seeded_data = _seed(root / "data", root / "run")
    storage = Storage(root / "data")
    keys = KeyStore(storage, root / "run")
    keys.lock()
    running = Device(Server(config, tls_cert, root / "gunicorn.log"), storage, keys,
                     seeded=seeded_data)
    yield running
    code = running.server.stop()
    assert code == 0, f"gunicorn did not stop cleanly ({code}):\n{running.server.log_tail()}"


@pytest.fixture(scope="session")
def seeded(device) -> Seeded:
    """The ids, dates and labels of the seeded sessions."""
    return device.seeded


@pytest.fixture(scope="session")
def listening(device) -> int:
    """A drafted session on ``device`` whose recording is kept: 25 minutes, a tone.

    The transcript marks 2:00-2:20 unreadable (``LISTENING_GAP``). Seeded on
    first use (a second of work), eight days back so it shares a day with no
    other session.
    """
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    started = (datetime.now(timezone.utc) - timedelta(days=8)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    result = seed.with_gap(seed.transcript_result(25, seed=7, flags=False, bookmarks=0),
                           *LISTENING_GAP)
    return seed.add_recorded_session(storage, clock, device.keys.recipient(),
                                     started_at=started, result=result, label="O.P. 2024-070")


@pytest.fixture(scope="session")
def fresh_device(tmp_path_factory, tls_cert) -> Iterator[Device]:
    """A device straight after install.sh: no account yet, a setup code issued."""
    config, root = _configure(tmp_path_factory, "fresh", tls_cert)
    storage = Storage(root / "data")
    code = SetupCodes(storage).issue()
    running = Device(Server(config, tls_cert, root / "gunicorn.log"), storage,
                     KeyStore(storage, root / "run"), setup_code=code)
    yield running
    running.server.stop()


def _context(browser, base_url: str, viewport: dict, **options):
    context = browser.new_context(base_url=base_url, viewport=viewport,
                                  accept_downloads=True, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def make_page(browser, device):
    """A factory for fresh pages (own cookies) on the seeded device; closed after the test.

    Every page records the dialogs it opens in ``page.dialogs`` (and dismisses
    them): the pages never use one, so any dialog means injected script ran,
    and the test fails when it ends.
    """
    contexts, pages = [], []

    def make(viewport: dict = DESKTOP, target: Device | None = None, **options):
        context = _context(browser, (target or device).url, viewport, **options)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message),
                                          dialog.dismiss()))
        pages.append(page)
        return page

    yield make
    for context in contexts:
        context.close()
    opened = [message for page in pages for message in page.dialogs]
    assert not opened, f"a page opened dialogs (script ran that should not): {opened}"


@pytest.fixture
def page(make_page):
    """A desktop page on the seeded server, not logged in."""
    return make_page()


@pytest.fixture(scope="session")
def _saved_login() -> dict:
    """The cookies of the last login, reused while the server still honours them."""
    return {}


@pytest.fixture
def logged_in(make_page, _saved_login):
    """A desktop page logged in as dr.rivera (which also unlocks the device).

    Reuses the previous test's login when it is still valid (each password
    check costs about a second of Argon2), and logs in afresh when a test
    before locked the device, logged out or let the login expire.
    """
    page = make_page(storage_state=_saved_login.get("state"))
    if "state" in _saved_login:
        page.goto("/sessions")
        if "/login" not in page.url:
            return page
    login(page, path="/sessions")
    assert page.get_by_test_id("current-user").inner_text() == USER
    _saved_login["state"] = page.context.storage_state()
    return page


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots():
    """Start each run with an empty screenshot folder, so stale pictures never mislead."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    yield
