"""Export (copy, download, print) and search, in a real browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.helpers import NOTE_WORD, TRANSCRIPT_WORD, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_export_copy_download_and_print(make_page, seeded, device):
    page = make_page(permissions=["clipboard-read", "clipboard-write"])
    login(page)
    page.goto(f"/sessions/{seeded.long}")
    page.get_by_test_id("export-link").click()
    page.wait_for_load_state()
    text = page.get_by_test_id("export-txt").input_value()
    markdown = page.get_by_test_id("export-md").input_value()
    assert NOTE_WORD in text and NOTE_WORD in markdown
    assert "DRAFT" in text.upper()
    assert seeded.labels[seeded.long] in text
    assert markdown.lstrip().startswith("#")
    shot(page, "export-desktop")

    # Copy puts exactly the shown text on the clipboard.
    page.get_by_test_id("copy-txt").click()
    page.wait_for_selector("[data-testid=copy-txt][data-copied=true]")
    assert page.evaluate("() => navigator.clipboard.readText()").strip() == text.strip()

    # Download gives a file named without client text, holding the same note.
    with page.expect_download() as info:
        page.get_by_test_id("download-md").click()
    download = info.value
    assert download.suggested_filename.startswith(f"holdnote-session-{seeded.long}-")
    assert download.suggested_filename.endswith(".md")
    assert seeded.labels[seeded.long] not in download.suggested_filename
    body = Path(download.path()).read_text(encoding="utf-8")
    assert body.strip() == markdown.strip()

    # The print stylesheet leaves navigation and buttons off paper.
    page.goto(f"/sessions/{seeded.long}")
    page.emulate_media(media="print")
    hidden = page.evaluate("""() => ['.topbar', '.head-actions', '.details-form']
        .map(sel => document.querySelector(sel))
        .filter(Boolean).map(el => getComputedStyle(el).display)""")
    assert hidden and all(d == "none" for d in hidden), hidden
    # The note prints first and alone: the transcript only when asked for (test_print.py).
    assert not page.get_by_test_id("transcript").is_visible()
    page.emulate_media(media="screen")
    actions = [(e.action, e.session_id, e.detail) for e in device.audit_entries()]
    assert ("session.export", seeded.long, "md") in actions


def test_search_finds_transcript_and_note_text(logged_in, seeded):
    page = logged_in
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("search-input").fill(TRANSCRIPT_WORD)
    page.get_by_test_id("search-submit").click()
    page.wait_for_load_state()
    hits = page.get_by_test_id("search-hit")
    assert hits.count() == 1
    assert int(hits.first.get_attribute("data-session-id")) == seeded.long
    assert hits.first.locator("mark").first.inner_text().lower() == TRANSCRIPT_WORD
    shot(page, "search-desktop")

    # "open at" jumps to the moment in the transcript.
    hits.first.get_by_role("link", name="open at").first.click()
    page.wait_for_load_state()
    assert f"/sessions/{seeded.long}#t-" in page.url
    anchor = page.url.split("#", 1)[1]
    assert TRANSCRIPT_WORD in page.locator(f"#{anchor}").inner_text().lower()

    # A phrase from a note, in quotes, and a word nobody said.
    page.goto("/search?q=" + f'"{NOTE_WORD} walk"'.replace(" ", "+"))
    assert [int(h) for h in page.get_by_test_id("search-hit").evaluate_all(
        "hits => hits.map(h => h.dataset.sessionId)")] == [seeded.long]
    page.goto("/search?q=zeppelin")
    assert "Nothing found" in page.get_by_test_id("search-count").inner_text()
