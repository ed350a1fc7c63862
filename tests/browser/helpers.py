"""Constants and helpers shared by the browser tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from tests.browser.server import REPO
from tests.support import seed

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
USER, PASSPHRASE = seed.USER, seed.PASSPHRASE
# Flags that keep chromium quiet on a closed network and working as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
TIMEOUT_MS = 20_000

# Words pinned into the seeded transcripts and notes, so search has something
# unmistakable to find.
TRANSCRIPT_WORD = "marmalade"
NOTE_WORD = "lighthouse"
XSS = "<script>alert('xss')</script><img src=x onerror=alert(2)>"
# The stretch of the ``listening`` session's recording its transcript marks unreadable.
LISTENING_GAP = (120.0, 140.0)


def login(page, username: str = USER, passphrase: str = PASSPHRASE, path: str = "/"):
    """Log in through the form (landing on ``path``); the page after login."""
    page.goto(path)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-passphrase").fill(passphrase)
    page.get_by_test_id("login-submit").click()
    page.wait_for_load_state()
    return page


def shot(page, name: str, full_page: bool = False) -> Path:
    """Save a screenshot as a test artifact and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def no_horizontal_overflow(page) -> bool:
    """True when nothing sticks out sideways (the phone test's core check)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
