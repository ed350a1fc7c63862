"""One damaged stored value affects only its own session (web_ui/views/damage.py).

Each test flips one byte of one real age ciphertext in the real database, the
way a failing SD card does, and checks what a clinician and IT then see.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta

from appliance import age
from appliance.store.db import State
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, actions, app, browser, clock, recovery, result, seed, svc, user)
from web_ui.views.damage import current_damage

LINES = [(3.0, "Clinician", "How has the week been?"),
         (8.5, "Client", "Evenings are still the hardest part of the week.")]
FLAG = {"category": "suicide", "start": 8.5, "end": 12.0, "speaker": "Client",
        "quote": "hardest part", "negated": False, "term": "hardest"}


def flipped(blob: bytes) -> bytes:
    """``blob`` with one payload byte XORed, as a bad flash cell leaves it."""
    damaged = bytearray(blob)
    damaged[-20] ^= 0x01
    return bytes(damaged)


def _pair(svc, clock) -> tuple[int, int]:
    """Two transcribed sessions: the first will be damaged, the second stays whole."""
    res = result(LINES, flags=[FLAG], sections={"subjective": "Sleeps badly since May."})
    bad = seed(svc, clock, started=START - timedelta(days=1), res=res, label="A.B. 2024-001")
    good = seed(svc, clock, started=START, res=res, label="C.D. 2024-002")
    return bad, good


def _damage_column(svc, table: str, column: str, key: str, session_id: int) -> None:
    # Straight to the file, below every API: that is where damage happens.
    with sqlite3.connect(svc.storage.db_path) as conn:
        blob = conn.execute(f"SELECT {column} FROM {table} WHERE {key} = ?",
                            (session_id,)).fetchone()[0]
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                     (flipped(blob), session_id))


def _damage_label(svc, session_id: int) -> None:
    svc.storage.update_session(
        session_id, label_enc=flipped(svc.storage.get_session(session_id).label_enc))


def test_a_damaged_label_marks_its_row_and_the_list_still_works(user, svc, clock):
    bad, _ = _pair(svc, clock)
    _damage_label(svc, bad)
    for path in ("/", "/sessions"):
        response = user.get(path)
        assert response.status_code == 200, path
        assert response.text.count('data-testid="session-row"') == 2
        assert "C.D. 2024-002" in response.text
        assert response.text.count('data-testid="label-damaged"') == 1
        assert "Cannot be read" in response.text


def test_damaged_flags_mark_their_row_only(user, svc, clock):
    bad, _ = _pair(svc, clock)
    _damage_column(svc, "sessions", "flags_enc", "id", bad)
    page = user.get("/sessions")
    assert page.status_code == 200
    assert page.text.count('data-testid="flags-damaged"') == 1
    assert page.text.count("1 to review") == 1, "the other session still shows its flag"
    session_page = user.get(f"/sessions/{bad}").text
    assert "risk-flag count in the sessions list cannot be read" in session_page


def test_each_damaged_value_is_audited_once_and_listed_for_it(user, svc, clock):
    bad, _ = _pair(svc, clock)
    _damage_label(svc, bad)
    for _ in range(3):
        user.get("/sessions")
        user.get(f"/sessions/{bad}")
    assert actions(svc).count("data.damaged") == 1
    entry = next(e for e in svc.audit.entries() if e.action == "data.damaged")
    assert entry.session_id == bad and "label" in entry.detail
    assert "A.B." not in entry.detail
    assert [(d.session_id, d.field) for d in current_damage(svc.storage)] == [(bad, "label")]
    device = user.get("/device").text
    assert 'data-testid="damaged-value"' in device and "client label cannot be read" in device
    assert 'data-testid="no-problems"' not in device


def test_retyping_a_damaged_label_repairs_it(user, svc, clock):
    bad, _ = _pair(svc, clock)
    _damage_label(svc, bad)
    page = user.get(f"/sessions/{bad}").text
    assert "Type it again under Session details" in page
    assert current_damage(svc.storage)
    response = user.submit(f"/sessions/{bad}/details", {"label": "A.B. 2024-001"},
                           page=f"/sessions/{bad}")
    assert response.status_code == 302
    assert current_damage(svc.storage) == []
    assert 'data-testid="damage-notice"' not in user.get(f"/sessions/{bad}").text


def test_a_damaged_transcript_leaves_the_note_and_the_export(user, svc, clock):
    bad, good = _pair(svc, clock)
    _damage_column(svc, "transcripts", "result_enc", "session_id", bad)
    response = user.get(f"/sessions/{bad}")
    assert response.status_code == 200
    page = response.text
    assert 'data-testid="damage-notice"' in page and 'data-testid="transcript-damaged"' in page
    assert "The transcript cannot be read" in page
    assert "The audio recording is still on the device." in page
    assert "The draft note can be read and edited." in page
    assert 'data-testid="note-form"' in page and "Sleeps badly since May." in page
    export = user.get(f"/sessions/{bad}/export.txt?transcript=1")
    assert export.status_code == 200 and "Sleeps badly since May." in export.text
    assert user.get(f"/sessions/{good}").text.count("Evenings are still") >= 1
    assert [d.field for d in current_damage(svc.storage)] == ["transcript"]


def test_a_damaged_note_is_explained_and_never_overwritten(user, svc, clock):
    bad, good = _pair(svc, clock)
    _damage_column(svc, "notes", "note_enc", "session_id", bad)
    stored = svc.storage.load_note(bad)["note_enc"]
    response = user.get(f"/sessions/{bad}")
    assert response.status_code == 200
    page = response.text
    assert 'data-testid="note-damaged"' in page and 'data-testid="note-form"' not in page
    assert "The note cannot be read" in page and "restore it from a backup" in page
    assert "The transcript can be read." in page and "Evenings are still" in page
    export = user.get(f"/sessions/{bad}/export")
    assert export.status_code == 409
    assert "cannot be read" in export.text and 'data-testid="nav-sessions"' in export.text
    save = user.submit(f"/sessions/{bad}/note", {"action": "save", "section-plan": "x"},
                       page=f"/sessions/{bad}")
    assert save.status_code == 409 and "Nothing was saved" in save.text
    assert svc.storage.load_note(bad)["note_enc"] == stored
    assert user.get(f"/sessions/{good}/export.txt").status_code == 200


def test_a_damaged_addendum_is_marked_and_the_rest_exports(user, svc, clock):
    bad, _ = _pair(svc, clock)
    svc.storage.transition(bad, State.SIGNED)
    with sqlite3.connect(svc.storage.db_path) as conn:
        conn.execute("UPDATE notes SET signed_at = ?, signed_by = 'dr' WHERE session_id = ?",
                     (START.isoformat(), bad))
    recipient = svc.keys.recipient()
    svc.storage.add_addendum(bad, age.encrypt(b"Called back, safe.", [recipient]), "dr")
    svc.storage.add_addendum(bad, age.encrypt(b"Second call.", [recipient]), "dr")
    _damage_column(svc, "addenda", "text_enc", "id", 1)
    page = user.get(f"/sessions/{bad}").text
    assert 'data-testid="addendum-damaged"' in page and "Second call." in page
    body = user.get(f"/sessions/{bad}/export.txt").text
    assert "This addendum cannot be read" in body and "Second call." in body


def test_search_works_around_damaged_values(user, svc, clock):
    bad, good = _pair(svc, clock)
    _damage_column(svc, "transcripts", "result_enc", "session_id", bad)
    _damage_label(svc, bad)
    response = user.get("/search?q=sleeps")
    assert response.status_code == 200
    ids = {int(i) for i in re.findall(r'data-session-id="(\d+)"', response.text)}
    assert ids == {bad, good}, "the damaged session's note is still found"
    hardest = user.get("/search?q=evenings").text
    assert f'data-session-id="{good}"' in hardest and f'data-session-id="{bad}"' not in hardest
    assert sorted(d.field for d in current_damage(svc.storage)) == ["label", "transcript"]
