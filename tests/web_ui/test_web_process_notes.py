"""Process notes through the routes: private to their author, and nothing private leaks.

dr.rivera (the device's first account) owns a signed session of the client "D.M.",
shared read-only with dr.chen (a clinician) and it.admin (an admin), and writes a
process note on it. Neither colleague sees its text or learns that it exists; no
export (text, Markdown, PDF, the client record) holds it; search does not find it,
not even for its author; the audit log, the database file and its write-ahead log
never hold its text; the drafting model's input (a real run with the bundled model)
and the case conceptualization's sources leave it out. Each check also finds
something it should (the note's own text, a transcript word), so it cannot pass
by looking in the wrong place.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from appliance import age
from appliance.access.keys import ADMIN, KeyStore
from appliance.clients.records import ClientRecord, seal_record
from appliance.store import process_notes as table
from appliance.store.db import Storage
from appliance.transcription.formulations import signed_sources
from appliance.transcription.job import Job
from tests.conftest import PASSPHRASE, USER, make_config
from tests.drafting.conftest import smollm2, stored_draft  # noqa: F401 - fixture
from tests.support.llm import ModelProxy
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    Browser,
    actions,
    app,
    browser,
    clock,
    colleague,
    recovery,
    result,
    seed,
    svc,
    user,
)
from web_ui.views import records

SECRET_WORD = "velvetcrane"  # only ever in the process note
PRIVATE = f"I felt impatient when the {SECRET_WORD} story came back; take it to supervision."
TRANSCRIPT_WORD = "zebracorn"  # in the session's transcript
NOTE_TEXT = "Slept better; practised the breathing twice a day."  # in the signed note
ADMIN_NAME, ADMIN_PASSPHRASE = "it.admin", "the admin's own passphrase"
PANEL = re.compile(r'<section class="card process-note.*?</section>', re.S)


def _panel(page: str) -> str:
    """The process-note panel of a session page, without the per-login CSRF token."""
    found = PANEL.search(page)
    assert found, "the session page has no process-note panel"
    return re.sub(r'name="csrf_token" value="[^"]+"', "", found.group(0))


def _version(page: str) -> str:
    return re.search(r'name="version" value="([^"]*)"', _panel(page)).group(1)


def _write(browser: Browser, sid: int, text: str, version: str | None = None):
    page = browser.get(f"/sessions/{sid}").text
    return browser.submit(f"/sessions/{sid}/process-note",
                          {"text": text, "version": _version(page) if version is None else version},
                          page=f"/sessions/{sid}")


@pytest.fixture
def story(app, user, svc, clock) -> dict:
    """dr.rivera's signed session of D.M., shared with dr.chen and it.admin; both logged in."""
    res = result([(5.0, "Client", f"I keep thinking about the {TRANSCRIPT_WORD}."),
                  (10.0, "Clinician", "Tell me more.")])
    sid = seed(svc, clock, started=START, res=res, label="D.M.")
    client = svc.storage.create_client(1, seal_record(ClientRecord("D.M."), svc.keys.recipient()))
    svc.storage.assign_client(sid, client)
    record = records.load_note(svc.storage, svc.plain, svc.keys.identity(), sid)
    note = records.edited_note(record.note, {"subjective": NOTE_TEXT, "assessment": "Stable.",
                                             "plan": "Review in a week."})
    records.sign_note(svc.storage, sid, note, record.version, svc.keys.recipient(), USER)
    chen = colleague(app, svc)
    svc.keys.add_user(ADMIN_NAME, ADMIN_PASSPHRASE, svc.keys.identity(), role=ADMIN)
    admin = Browser(app.test_client())
    assert admin.login(ADMIN_NAME, ADMIN_PASSPHRASE).status_code == 302
    ids = {u.username: u.id for u in svc.keys.users()}
    return {"sid": sid, "client": client, "chen": chen, "admin": admin, "ids": ids}


def _share(svc, story, *names: str) -> None:
    for name in names:
        svc.storage.share(story["sid"], story["ids"][name], USER)


def test_the_author_writes_a_private_note_that_signing_does_not_lock(user, svc, story):
    sid = story["sid"]
    page = user.get(f"/sessions/{sid}").text
    panel = _panel(page)
    assert "Process note (private)" in panel and "Not written yet." in panel
    assert ("Only you can read this. It is never exported, never searched by others, never "
            "given to the drafting model.") in panel
    assert "psychotherapy notes" in panel and "signing the note does not lock it" in panel
    assert "no-print" in panel.split(">", 1)[0], "printing the session page leaves it out"
    assert 'data-testid="signed-banner"' in page  # the progress note is signed: no matter
    saved = _write(user, sid, PRIVATE + "\r\nSecond line.")
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/sessions/{sid}#process-note")
    panel = _panel(user.get(f"/sessions/{sid}").text)
    assert f"{PRIVATE}\nSecond line.</textarea>" in panel.replace("&#39;", "'")
    assert "Last saved 2024-05-06" in panel and "Delete process note" in panel
    assert _write(user, sid, "Rewritten.").status_code == 302
    assert "Rewritten.</textarea>" in _panel(user.get(f"/sessions/{sid}").text)
    entries = [(e.action, e.session_id, e.detail) for e in svc.audit.entries(newest_first=False)
               if e.action.startswith("process_note.")]
    assert [action for action, _, _ in entries if action != "process_note.view"] == [
        "process_note.save", "process_note.save"]
    assert ("process_note.view", sid, None) in entries
    assert {(at, detail) for _, at, detail in entries} == {(sid, None)}, "the session id only"
    deleted = user.submit(f"/sessions/{sid}/process-note/delete",
                          {"version": _version(user.get(f"/sessions/{sid}").text)},
                          page=f"/sessions/{sid}")
    assert deleted.status_code == 302
    assert "Not written yet." in _panel(user.get(f"/sessions/{sid}").text)
    assert actions(svc)[-2:] == ["process_note.delete", "session.view"]
    assert not table.exists(svc.storage, sid, story["ids"][USER])


def test_a_colleague_with_a_share_and_an_admin_see_neither_the_text_nor_that_it_exists(
        user, svc, story):
    sid, chen, admin = story["sid"], story["chen"], story["admin"]
    _share(svc, story, "dr.chen", ADMIN_NAME)
    urls = [f"/sessions/{sid}", "/sessions", f"/sessions/{sid}/export?transcript=1",
            f"/sessions/{sid}/export.md?transcript=1", f"/sessions/{sid}/transcription.json",
            "/device", "/device/status.json", f"/search?q={SECRET_WORD}", f"/sessions/{sid}/delete"]
    before = {who: {url: b.get(url) for url in urls} for who, b in (("chen", chen),
                                                                    ("admin", admin))}
    assert _write(user, sid, PRIVATE).status_code == 302
    for who, browser_ in (("chen", chen), ("admin", admin)):
        for url in urls:
            after = browser_.get(url)
            assert after.status_code == before[who][url].status_code, (who, url)
            assert SECRET_WORD not in after.text.replace(f"q={SECRET_WORD}", "").replace(
                f"\u201c{SECRET_WORD}\u201d", "").replace(f'value="{SECRET_WORD}"', ""), (who, url)
        page = browser_.get(f"/sessions/{sid}").text
        assert TRANSCRIPT_WORD in page, "the shared session itself is readable"
        # Their own empty panel, byte for byte as before the author wrote: nothing says one exists.
        assert _panel(page) == _panel(before[who][f"/sessions/{sid}"].text)
        assert "Not written yet." in _panel(page) and _version(page) == ""
        assert "Nothing found" in browser_.get(f"/search?q={SECRET_WORD}").text
    # A colleague's own note is theirs: writing or deleting it never touches the author's.
    assert _write(chen, sid, "Dr Chen's own thoughts.").status_code == 302
    assert "Dr Chen's own thoughts." not in user.get(f"/sessions/{sid}").text.replace("&#39;", "'")
    assert SECRET_WORD not in chen.get(f"/sessions/{sid}").text
    chen.submit(f"/sessions/{sid}/process-note/delete", {"version": ""}, page=f"/sessions/{sid}")
    assert SECRET_WORD in user.get(f"/sessions/{sid}").text
    svc.storage.unshare(sid, story["ids"]["dr.chen"])
    assert chen.get(f"/sessions/{sid}").status_code == 404
    sneaking = chen.submit(f"/sessions/{sid}/process-note", {"text": "sneaking in", "version": ""})
    assert sneaking.status_code == 404


def _pdf_text(response) -> str:
    assert response.status_code == 200, response.text
    pages = PdfReader(io.BytesIO(response.data)).pages
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))


def test_no_export_holds_the_note(user, svc, story):
    sid, client = story["sid"], story["client"]
    _share(svc, story, "dr.chen")
    assert _write(user, sid, PRIVATE).status_code == 302
    assert SECRET_WORD in user.get(f"/sessions/{sid}").text  # (and the flash is shown there)
    exports = {}
    for query in ("", "?transcript=1"):
        for fmt in ("export", "export.txt", "export.md"):
            exports[f"{fmt}{query}"] = user.get(f"/sessions/{sid}/{fmt}{query}").text
            exports[f"chen {fmt}{query}"] = story["chen"].get(f"/sessions/{sid}/{fmt}{query}").text
        exports[f"pdf{query}"] = _pdf_text(user.get(f"/sessions/{sid}/export.pdf{query}"))
    exports["record pdf"] = _pdf_text(user.get(f"/clients/{client}/export.pdf"))
    for fmt in ("md", "txt"):
        exports[f"record {fmt}"] = user.get(f"/clients/{client}/export.{fmt}").text
    for name, body in exports.items():
        assert NOTE_TEXT in body, f"{name}: the export holds the signed note"
        assert SECRET_WORD not in body and "Process note" not in body, name
        if "transcript=1" in name:
            assert TRANSCRIPT_WORD in body, name


def test_search_never_finds_a_process_note_not_even_for_its_author(user, svc, story):
    sid = story["sid"]
    assert _write(user, sid, PRIVATE).status_code == 302
    found = user.get(f"/search?q={TRANSCRIPT_WORD}").text
    assert found.count('data-testid="search-hit"') == 1
    for query in (SECRET_WORD, f'"{PRIVATE[:30]}"', f"{SECRET_WORD}&client={story['client']}"):
        page = user.get(f"/search?q={query}").text
        assert 'data-testid="search-hit"' not in page and "Nothing found" in page, query


def test_the_audit_log_the_database_and_the_logs_never_hold_its_text(user, svc, story, caplog):
    sid = story["sid"]
    assert _write(user, sid, PRIVATE).status_code == 302
    assert _write(user, sid, PRIVATE + " More.").status_code == 302
    user.get(f"/sessions/{sid}")
    db = svc.storage.db_path
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM audit").fetchall()
        assert conn.execute("SELECT COUNT(*) FROM process_notes").fetchone()[0] == 1
    assert [r for r in rows if r[3].startswith("process_note.")], "the audit log records it"
    assert SECRET_WORD not in repr(rows)
    files = [p for p in db.parent.rglob("*") if p.is_file()]
    assert db.with_name(db.name + "-wal") in files, "the write-ahead log is looked at too"
    for path in files:
        raw = path.read_bytes()
        assert SECRET_WORD.encode() not in raw and SECRET_WORD.encode("utf-16-le") not in raw, path
    assert SECRET_WORD not in caplog.text
    # The ciphertext is there, and it is the note: decrypted with the practice key.
    stored = table.load(svc.storage, sid, story["ids"][USER])
    assert age.decrypt(stored.body_enc, [svc.keys.identity()]).decode() == PRIVATE + " More."


@pytest.mark.parametrize(("text", "status", "message"), [
    ("   \r\n ", 400, "The process note is empty"),
    ("x" * 20_001, 400, "at most 20,000 characters; this one has 20,001"),
], ids=["empty", "too-long"])
def test_bad_input_is_refused_with_the_text_kept(user, svc, story, text, status, message):
    sid = story["sid"]
    refused = _write(user, sid, text)
    assert refused.status_code == status and message in refused.text
    if text.strip():
        assert text + "</textarea>" in _panel(refused.text)
    assert not table.exists(svc.storage, sid, story["ids"][USER])
    assert "process_note.save" not in actions(svc)


def test_another_tab_csrf_and_a_locked_device(user, svc, story):
    sid = story["sid"]
    stale = _version(user.get(f"/sessions/{sid}").text)
    assert _write(user, sid, "From the first tab.").status_code == 302
    refused = _write(user, sid, "From the second tab.", version=stale)
    assert refused.status_code == 409 and "saved again at" in refused.text
    assert "From the second tab.</textarea>" in _panel(refused.text)
    assert "From the first tab." in age.decrypt(
        table.load(svc.storage, sid, story["ids"][USER]).body_enc, [svc.keys.identity()]).decode()
    no_token = user.post(f"/sessions/{sid}/process-note", {"text": "no token", "version": ""})
    assert no_token.status_code == 400 and "This form has expired" in no_token.text
    token = user.token(f"/sessions/{sid}")
    svc.keys.lock()
    locked = user.post(f"/sessions/{sid}/process-note",
                       {"text": "while locked", "version": "", "csrf_token": token})
    assert locked.status_code == 302 and "/login" in locked.headers["Location"]
    assert actions(svc).count("process_note.save") == 1


def test_deleting_the_session_or_removing_the_author_deletes_their_note(user, svc, clock, story):
    sid, ids = story["sid"], story["ids"]
    _share(svc, story, "dr.chen")
    other = seed(svc, clock, started=START + timedelta(days=1),
                 res=result([(5.0, "Client", "Another week.")]))
    for session_id in (sid, other):
        assert _write(user, session_id, PRIVATE).status_code == 302
    assert _write(story["chen"], sid, "Dr Chen's own thoughts.").status_code == 302
    removed = user.submit("/users/dr.chen/remove", {}, page="/users")
    assert removed.status_code == 302
    assert not table.exists(svc.storage, sid, ids["dr.chen"])
    assert table.exists(svc.storage, sid, ids[USER])
    day = START.astimezone().date().isoformat()
    assert user.submit(f"/sessions/{sid}/delete", {"confirm_date": day}).status_code == 302
    assert not table.exists(svc.storage, sid, ids[USER])
    assert table.exists(svc.storage, other, ids[USER])


# --- the drafting model's input and the case conceptualization's sources -----------------------

FOCUS_ONLY = {"template": "Focus", "custom_templates": [{"name": "Focus", "sections": [
    {"key": "focus", "title": "Focus", "instruction": "What the client worked on."}]}]}
PLAN = "- Slow breathing twice a day\n- Anxiety log from zero to ten"


class Recording(ModelProxy):
    """The real model, keeping every message it is given."""

    def __init__(self, model):
        super().__init__(model)
        self.prompts: list[str] = []

    def chat(self, messages, *, max_tokens):
        self.prompts.extend(str(m.get("content", "")) for m in messages)
        return super().chat(messages, max_tokens=max_tokens)


class Clock:
    def __init__(self):
        self.moment = datetime(2026, 10, 5, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def practice(tmp_path):
    """A device with the bundled model, one drafted section, and two sessions of one client."""
    cfg = make_config(tmp_path, drafting={"model": "bundled-smollm2", "context_tokens": 4096,
                                          "max_tokens_per_section": 32, "method": "lines"},
                      notes=FOCUS_ONLY)
    clock = Clock()
    storage = Storage(cfg.paths.data_dir, now=clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    keys.init(USER, PASSPHRASE)
    author = keys.users()[0].id
    client = storage.create_client(author, seal_record(ClientRecord("D.M."), keys.recipient()))
    weeks = []
    for days, week in ((0, "week1"), (7, "week2")):
        clock.moment = datetime(2026, 10, 5, 15, 0, tzinfo=UTC) + timedelta(days=days)
        session, res = stored_draft(storage, keys.recipient(), week)
        # Its first two lines only: the model is asked about one or two lines, not fifty.
        res = dataclasses.replace(res, segments=res.segments[:2])
        storage.save_transcript(session.id, age.encrypt(res.to_bytes(), [keys.recipient()]))
        storage.assign_client(session.id, client)
        body = age.encrypt(f"{PRIVATE} ({week})".encode(), [keys.recipient()])
        table.save(storage, session.id, author, body, based_on=table.NONE)
        weeks.append((session.id, res))
    (first, _), _ = weeks
    note = json.loads(age.decrypt(storage.load_note(first)["note_enc"], [keys.identity()]))
    for section in note["sections"]:
        if not section.get("auto"):
            section["text"] = PLAN if section["key"] == "plan" else "Written by the clinician."
    records.sign_note(storage, first, note, "", keys.recipient(), USER)
    storage.update_session(first, drafting="done")
    return cfg, storage, keys, client, weeks


def test_the_drafting_model_is_never_given_a_process_note(practice, smollm2):  # noqa: F811
    cfg, storage, keys, _, weeks = practice
    model = Recording(smollm2)
    Job(cfg, storage=storage, keys=keys, language_model=model,
        recorder_status=lambda: None).run_drafts()
    (_, _), (second, res) = weeks
    said = "\n".join(model.prompts)
    assert model.prompts and any(segment.text in said for segment in res.segments), \
        "the recorded prompts are the model's real input: the transcript is in them"
    assert SECRET_WORD not in said
    drafted = age.decrypt(storage.load_note(second)["note_enc"], [keys.identity()]).decode()
    assert "Slow breathing twice a day" in drafted, "the previous signed note was read"
    assert SECRET_WORD not in drafted


def test_the_case_conceptualization_sources_leave_it_out(practice):
    cfg, storage, keys, client, weeks = practice
    sources, _ = signed_sources(cfg, storage, client, keys.identity())
    assert [s.session_id for s in sources] == [weeks[0][0]]
    read = sources[0].note_text + " ".join(line.text for line in sources[0].lines)
    assert "Slow breathing twice a day" in read and SECRET_WORD not in read
