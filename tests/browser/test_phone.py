"""The main pages on a phone-sized screen: usable, nothing sticking out sideways."""

from __future__ import annotations

import pytest

from tests.browser.helpers import PHONE, login, no_horizontal_overflow, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = [
    ("sessions", "/sessions"),
    ("session", "/sessions/{long}"),
    ("search", "/search?q=sleep"),
    ("device", "/device"),
    ("export", "/sessions/{long}/export"),
    ("users", "/users"),
    ("audit", "/audit"),
]


@pytest.fixture
def phone(make_page):
    """A phone-sized page (390 x 844, touch), logged in."""
    page = make_page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto("/login")
    assert no_horizontal_overflow(page)
    shot(page, "login-phone")
    return login(page)


def test_main_pages_fit_a_phone(phone, seeded):
    page = phone
    problems = []
    for name, path in PAGES:
        page.goto(path.format(long=seeded.long))
        assert page.get_by_test_id("current-user").count() == 1, name
        if not no_horizontal_overflow(page):
            widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
                .slice(0, 3).map(e => e.tagName + '.' + e.className)""")
            problems.append(f"{name}: wider than the screen ({widest})")
        shot(page, f"{name}-phone")
    assert not problems, problems


def test_lock_and_log_out_are_reachable_on_a_phone(phone):
    for test_id in ("lock-device", "logout", "nav-sessions", "nav-search"):
        element = phone.get_by_test_id(test_id)
        element.scroll_into_view_if_needed()
        assert element.is_visible(), test_id
        box = element.bounding_box()
        # Big enough to hit with a thumb (WCAG 2.5.8 asks for at least 24 px).
        assert box["height"] >= 24 and box["width"] >= 24, (test_id, box)


def test_a_recording_plays_on_a_phone(phone, listening):
    page = phone
    page.goto(f"/sessions/{listening}")
    player = page.get_by_test_id("player")
    assert player.get_by_test_id("player-audio").is_visible()
    assert player.get_by_test_id("player-speed").is_visible()
    assert no_horizontal_overflow(page)
    # A tap on a line plays from it, and the player stays in view above the transcript.
    line = page.locator("li.seg[data-start]").nth(20)
    start = float(line.get_attribute("data-start"))
    line.locator(".txt").tap()
    page.wait_for_function(
        "t => { const a = document.querySelector('[data-testid=player-audio]');"
        " return !a.paused && a.currentTime > t; }", arg=start)
    box = player.bounding_box()
    assert box["y"] >= -1 and box["y"] + box["height"] <= 844, box
    shot(page, "playback-phone")
