"""Printing a session in a real browser: the note as the PDF lays it out, the transcript on request.

The clinician sets their profile, signs a note, and prints: paper shows the session,
client and clinician, the note and the signature line with name and credentials; the
transcript, the player, the forms and the screen's hints stay off it until "Include
transcript when printing" is ticked (or the page is opened with ?print=transcript).
"""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from appliance.store.db import Storage
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPOKEN = "The wombat came back in my dreams again."
SIGNATURE = re.compile(r"Signed by Ana Pérez, PhD, Licensed Psychologist on \d{4}-\d\d-\d\d")


def _session(device) -> int:
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    result = seed.transcript_result(3, seed=21, flags=False, bookmarks=0,
                                    extra=[(30, seed.CLIENT, SPOKEN)])
    started = (datetime.now(timezone.utc) - timedelta(days=11)).replace(
        hour=10, minute=0, second=0, microsecond=0)
    return seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                            result=result, label="P.R. 2024-111")


def _shown(page, test_id: str) -> bool:
    return page.get_by_test_id(test_id).first.is_visible()


def test_print_the_signed_note_with_the_transcript_only_when_asked(logged_in, device):
    page, sid = logged_in, _session(device)
    page.goto("/account/profile")
    page.get_by_test_id("profile-full-name").fill("Ana Pérez")
    page.get_by_test_id("profile-credentials").fill("PhD, Licensed Psychologist")
    page.get_by_test_id("profile-submit").click()
    page.wait_for_load_state()

    page.goto(f"/sessions/{sid}")
    for area in page.locator("textarea[name^=section-]").all():
        if not area.input_value().strip() or "[" in area.input_value():
            area.fill("Discussed the recurring dream and its triggers.")
    page.get_by_test_id("reviewed").check()
    page.get_by_test_id("sign-note").click()
    page.wait_for_load_state()
    assert _shown(page, "addendum-form") and _shown(page, "transcript")
    assert not _shown(page, "print-signature")

    page.emulate_media(media="print")
    for hidden in ("transcript", "addendum-form", "print-button", "details-form", "signed-banner"):
        assert not _shown(page, hidden), f"{hidden} prints"
    assert SIGNATURE.search(page.get_by_test_id("print-signature").inner_text())
    head = page.get_by_test_id("print-head").inner_text()
    assert "Clinician: Ana Pérez, PhD, Licensed Psychologist" in head and "P.R. 2024-111" in head
    paper, sheets = _printed(page)
    assert SIGNATURE.search(paper) and SPOKEN not in paper and "add a dated addendum" not in paper
    assert sheets == 1, "the note of a short session fits one A4 sheet"

    page.emulate_media(media="screen")
    page.get_by_test_id("print-transcript").check()
    page.emulate_media(media="print")
    assert _shown(page, "transcript") and not _shown(page, "addendum-form")
    printed, sheets = _printed(page)
    assert SPOKEN in printed and sheets > 1

    page.goto(f"/sessions/{sid}?print=transcript")
    assert _shown(page, "transcript")
    page.emulate_media(media="screen")


def _printed(page) -> tuple[str, int]:
    """What Chromium would print, read back from its own PDF, and how many A4 sheets."""
    pages = PdfReader(io.BytesIO(page.pdf(format="A4"))).pages
    # NFKC: Chromium sets "fi" as a ligature, which pypdf reads back as one character.
    text = unicodedata.normalize("NFKC", " ".join(p.extract_text() for p in pages))
    return re.sub(r"\s+", " ", text), len(pages)
