"""Two clinicians on one device, in a real browser: privacy by access control.

A device of its own (so the shared one's session counts stay as they are):
dr.rivera set it up, dr.chen is a second clinician, and one recording is
unassigned. dr.chen sees their own session, never dr.rivera's (not in the
list, not by its address, not in search), and claims the unassigned one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.store.db import Storage
from tests.browser.helpers import USER, login, shot
from tests.browser.server import Server, free_port, write_config
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHEN, CHEN_PASSPHRASE = "dr.chen", "dr chen's own passphrase"
PRIVATE_WORD = "zebracorn"  # only in dr.rivera's transcript
LABELS = {"rivera": "R.T. 2024-101", "chen": "C.H. 2024-102", "nobody": "U.N. 2024-103"}


@dataclass
class TwoClinicians:
    """The running server and the ids of its three sessions."""

    server: Server
    storage: Storage
    ids: dict[str, int]


@pytest.fixture(scope="module")
def practice(tmp_path_factory, tls_cert) -> Iterator[TwoClinicians]:
    root = tmp_path_factory.mktemp("roles")
    config = write_config(root / "holdnote.toml", root, tls_cert.path.parent, free_port())
    clock = seed.Clock()
    storage = Storage(root / "data", now=clock)
    seed.init_practice(storage, root / "run")
    keys = KeyStore(storage, root / "run", work_factor=10)
    keys.add_user(CHEN, CHEN_PASSPHRASE, keys.identity())
    yesterday = datetime.now(UTC) - timedelta(days=1)
    ids = {}
    for hours, (who, owner) in enumerate([("rivera", USER), ("chen", CHEN),
                                          ("nobody", None)]):
        extra = [(30, seed.CLIENT, f"The {PRIVATE_WORD} dream came back.")] if (
            who == "rivera") else []
        ids[who] = seed.add_session(
            storage, clock, keys.recipient(), started_at=yesterday + timedelta(hours=hours),
            result=seed.transcript_result(10, seed=hours, extra=extra), label=LABELS[who],
            owner=owner)
    server = Server(config, tls_cert, root / "gunicorn.log")
    yield TwoClinicians(server, Storage(root / "data"), ids)
    server.stop()


def test_a_clinician_sees_only_their_own_session_and_claims_an_unassigned_one(
        make_page, practice):
    page = login(make_page(target=practice.server), CHEN, CHEN_PASSPHRASE, "/sessions")
    assert page.get_by_test_id("current-user").inner_text() == CHEN
    table = page.get_by_test_id("sessions-table").inner_text()
    assert LABELS["chen"] in table
    assert LABELS["rivera"] not in table and LABELS["nobody"] not in table
    rows = page.get_by_test_id("session-row")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-session-id") == str(practice.ids["chen"])
    shot(page, "roles-sessions-clinician")

    # dr.rivera's session by its address: the same page as a session that never existed.
    page.goto(f"/sessions/{practice.ids['rivera']}")
    assert "There is no such session" in page.content()
    assert LABELS["rivera"] not in page.content()
    # Search does not find dr.rivera's words either.
    page.goto("/search")
    page.get_by_test_id("search-input").fill(PRIVATE_WORD)
    page.get_by_test_id("search-submit").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("search-hit").count() == 0

    # The unassigned recording: date and length only, and a Claim button.
    page.goto("/sessions")
    unassigned = page.locator(f"[data-testid=listed-row][data-session-id='{practice.ids['nobody']}']")
    assert unassigned.count() == 1
    unassigned.get_by_test_id("claim").click()
    page.wait_for_load_state()
    assert f"/sessions/{practice.ids['nobody']}" in page.url
    assert page.get_by_test_id("session-label").inner_text() == LABELS["nobody"]
    assert "yours now" in page.get_by_test_id("flash").inner_text()
    claims = [e for e in AuditLog(practice.storage).entries() if e.action == "session.claim"]
    assert [(e.actor, e.session_id) for e in claims] == [(CHEN, practice.ids["nobody"])]
    shot(page, "roles-claimed-session")
