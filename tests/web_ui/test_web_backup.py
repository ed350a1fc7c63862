"""Backups as IT sees them: the Device page's backup card and the ``backup`` check of /healthz.

Backup rows are written through their owner module (appliance/store/backups.py), as
the backup job writes them; the app runs on the fake clock, so "36 hours later" is a
clock move, not a wait.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.store import backups
from tests.conftest import make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, app, browser, clock, recovery, svc, user)
from tests.web_ui.test_web_device import healthy, recorder  # noqa: F401 - fixtures
from web_ui.views.backup_status import NOT_CONFIGURED

MAX_AGE_H = 36


@pytest.fixture
def cfg(request, tmp_path):
    """Backups to a (mounted) drive, judged stale after 36 hours; parametrized False: off."""
    if not getattr(request, "param", True):
        return make_config(tmp_path)
    return make_config(tmp_path, backup={"target_dir": str(tmp_path / "backup"),
                                         "max_age_hours": MAX_AGE_H})


def backup(svc, hours_ago: float, *, verified: bool = True, size: int = 40_265_318):
    """A backup row the job wrote ``hours_ago`` before the app's clock (38.4 MB as
    ``holdnote backup list`` counts them)."""
    made = svc.now() - timedelta(hours=hours_ago)
    return backups.add(svc.storage, created_at=made, file_name=f"holdnote-backup-{made:%Y%m%dT%H%M%SZ}.age",
                       target_dir=svc.cfg.backup.target_dir, size_bytes=size, sessions=12,
                       verified_at=made + timedelta(minutes=3) if verified else None)


def backup_problems(response) -> list[str]:
    return [p["message"] for p in response.get_json()["problems"] if p["check"] == "backup"]


def card(page: str) -> str:
    return page.split('data-testid="backup-card"')[1].split("</section>")[0]


# --- the Device page ------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [False], indirect=True)
def test_without_a_target_the_page_says_how_to_configure_one_and_healthz_does_not_complain(
        clock, user, svc):
    assert svc.cfg.backup.target_dir is None
    shown = card(user.get("/device").text)
    assert NOT_CONFIGURED in shown and "README: Backups" in shown
    clock.advance(days=30)
    assert backup_problems(user.get("/healthz")) == []


def test_a_good_backup_shows_its_time_size_target_and_verification(user, svc):
    made = backup(svc, hours_ago=5)
    shown = card(user.get("/device").text)
    assert f'data-testid="backup-target">{svc.cfg.backup.target_dir}<' in shown
    assert "38.4 MB, 12 sessions" in shown and made.file_name in shown
    assert "2024-05-06 02:30" in shown  # 5 h before the clock's 07:30 (UTC, the test zone)
    assert 'data-testid="backup-verified">Yes, 2024-05-06 02:33<' in shown
    assert "backup-error" not in shown


def test_a_backup_not_yet_verified_says_so(user, svc):
    backup(svc, hours_ago=1, verified=False)
    assert 'data-testid="backup-verified">Not yet<' in card(user.get("/device").text)


def test_a_failed_attempt_shows_its_reason_beside_the_last_good_backup(user, svc):
    good = backup(svc, hours_ago=30)
    backups.mark_failed(svc.storage, None, "the backup drive is not mounted at /media/x: plug it in",
                        target_dir=svc.cfg.backup.target_dir)
    shown = card(user.get("/device").text)
    assert "failed: the backup drive is not mounted at /media/x: plug it in" in shown
    assert "Last good backup" in shown and good.file_name in shown


def test_before_the_first_backup_the_page_says_when_it_comes(user):
    shown = card(user.get("/device").text)
    assert 'data-testid="backup-none"' in shown and "backup now" in shown


# --- /healthz ---------------------------------------------------------------------------------


def test_a_fresh_backup_keeps_healthz_ok(user, healthy, recorder, svc):
    backup(svc, hours_ago=MAX_AGE_H - 1)
    response = user.get("/healthz")
    assert response.status_code == 200, response.get_json()


def test_a_stale_backup_makes_healthz_503_with_what_to_do(user, healthy, recorder, svc):
    backup(svc, hours_ago=MAX_AGE_H + 4)
    response = user.get("/healthz")
    assert response.status_code == 503
    [message] = backup_problems(response)
    assert f"is {MAX_AGE_H + 4} h old" in message
    assert str(svc.cfg.backup.target_dir) in message
    assert "sudo -u holdnote holdnote backup now" in message


def test_a_stale_backup_names_why_the_last_attempt_failed(user, healthy, recorder, svc):
    backup(svc, hours_ago=MAX_AGE_H + 12)
    backups.mark_failed(svc.storage, None, "the backup drive is full (2 MB free)",
                        target_dir=svc.cfg.backup.target_dir)
    [message] = backup_problems(user.get("/healthz"))
    assert "the last attempt failed: the backup drive is full (2 MB free)." in message


def test_an_unverified_backup_does_not_count(user, healthy, recorder, svc):
    backup(svc, hours_ago=MAX_AGE_H + 10)
    backup(svc, hours_ago=1, verified=False)
    assert len(backup_problems(user.get("/healthz"))) == 1


def test_a_new_device_gets_its_first_night_before_healthz_complains(browser, recovery, svc, clock):
    """Set up today with no backup yet: fine until max_age_hours after its first audit entry."""
    svc.audit.append("holdnote", "setup.done")
    clock.advance(hours=MAX_AGE_H - 1)
    assert backup_problems(browser.get("/healthz")) == []
    clock.advance(hours=2)
    [message] = backup_problems(browser.get("/healthz"))
    assert message.startswith("No verified backup exists")
    backup(svc, hours_ago=0.5)
    assert backup_problems(browser.get("/healthz")) == []


def test_the_device_page_lists_the_backup_problem_too(user, healthy, recorder, svc):
    backup(svc, hours_ago=MAX_AGE_H + 4)
    page = user.get("/device").text
    assert 'data-testid="problem" data-check="backup"' in page


def test_a_device_not_yet_set_up_has_nothing_to_back_up(browser, clock):
    clock.advance(days=10)
    assert backup_problems(browser.get("/healthz")) == []
