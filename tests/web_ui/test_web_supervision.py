"""Supervision excerpts through the route: the form, the preview, the downloads, the refusals.

Dr Rivera's session with Dana Whitfield (identifier C-42), labelled "DW intake",
recorded on 6 May 2024: a bookmark, a moment to review ("you don't understand"),
her partner Tom by name, and Maria's voice. What is previewed is what downloads, byte for byte; the
PDF holds no name; only Dr Rivera makes one; the audit says id, format and count.
"""

from __future__ import annotations

import html
import io
import re

import pytest
from pypdf import PdfReader

from appliance.clients.records import ClientRecord, seal_record
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
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
from tests.conftest import USER

LINES = [
    (0.0, "Clinician", "Welcome back, Dana. How did the 3rd of May go?"),
    (5.0, "Client", "Tom and I argued again. Dana Whitfield never wins."),
    (12.0, "Clinician", "Perhaps you push Tom away because you fear he will leave."),
    (18.0, "Client", "No. You don't understand, that's not what I said."),
    (25.0, "Clinician", "You're right, I got that wrong. Tell me how it was."),
    (31.0, "Client", "He said DW intake forms are silly."),
    (36.0, "Maria", "Sorry, wrong room."),
]
NAMES = ("Dana", "Whitfield", "Tom", "C-42", "DW intake", "3rd of May", "2024-05-06", "06/05")


@pytest.fixture
def session_id(user, svc, clock) -> int:
    res = result(LINES, bookmarks=[{"offset": 13.0, "segment_index": 2, "text": "Interpretation"}])
    found = seed(svc, clock, started=START, res=res, label="DW intake")
    client = svc.storage.create_client(1, seal_record(
        ClientRecord(name="Dana Whitfield", identifier="C-42"), svc.keys.recipient()))
    svc.storage.assign_client(found, client)
    return found


def _url(session_id: int) -> str:
    return f"/sessions/{session_id}/supervision"


def _post(user, session_id: int, action: str, **fields):
    data = {"moment": ["12.0", "18.0"], "context": "1", "other_names": "Tom", "action": action,
            "comment-12.0": "Too early for this interpretation?", "comment-18.0": "", **fields}
    return user.submit(_url(session_id), data, page=_url(session_id))


def _preview(response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    shown = re.search(r'data-testid="supervision-preview">(.*?)</pre>', response.text, re.S)
    digest = re.search(r'name="previewed" value="([0-9a-f]+)"', response.text)
    assert shown and digest, "no preview on the page"
    return html.unescape(shown.group(1)), digest.group(1)


def _audit(svc) -> list[str]:
    return [f"{e.action} {e.detail or ''}".strip() for e in svc.audit.entries(newest_first=False)
            if e.action.startswith("supervision") and e.detail]  # not the form's own views


def test_the_form_offers_the_moments_and_prefills_the_client_names(user, session_id):
    assert f'href="{_url(session_id)}"' in user.get(f"/sessions/{session_id}").text
    page = user.get(_url(session_id))
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    body = page.text
    assert body.count('data-testid="pick-bookmark"') == 1
    assert 'value="18.0" data-testid="pick-moment"' in body  # the rupture candidate
    assert body.count('data-testid="pick-line"') == len(LINES)
    always = re.search(r"Always replaced by “Client”: (.*?)\.</p>", body).group(1)
    assert always.split(", ") == ["Dana Whitfield", "Dana", "Whitfield", "C-42", "DW intake"]
    suggested = body.split('data-testid="supervision-client-names">')[1].split("</textarea>")[0]
    assert suggested == "DW"  # the label's capitalised word, to keep or take out
    others = body.split('data-testid="supervision-other-names">')[1].split("</textarea>")[0]
    assert others == "Maria"  # a third voice named in the transcript


def test_what_is_previewed_is_what_downloads_and_names_nobody(user, svc, session_id):
    text, digest = _preview(_post(user, session_id, "preview"))
    assert text.startswith("# Supervision excerpt\n\nSession: May 2024")
    assert "**Clinician:** Perhaps you push [name] away" in text
    assert "**Client:** [name] and I argued again. Client never wins." in text
    assert "> Too early for this interpretation?" in text
    for name in NAMES:
        assert name not in text, name
    download = _post(user, session_id, "md", previewed=digest)
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
    assert download.mimetype == "text/markdown"
    assert download.headers["Content-Disposition"] == 'attachment; filename="supervision-excerpt.md"'
    assert download.get_data(as_text=True) == text
    pdf = _post(user, session_id, "pdf", previewed=digest)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    printed = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    printed = re.sub(r"\s+", " ", printed)
    assert "Session: May 2024" in printed and "Too early for this interpretation?" in printed
    for name in NAMES:
        assert name not in printed, name
    assert _audit(svc) == ["supervision.view preview, 2 moments", "supervision.export md, 2 moments",
                           "supervision.export pdf, 2 moments"]


def test_a_download_that_differs_from_the_preview_is_refused(user, svc, session_id):
    _, digest = _preview(_post(user, session_id, "preview"))
    changed = _post(user, session_id, "md", previewed=digest, **{"comment-18.0": "New words."})
    assert changed.status_code == 409 and "The form changed since the preview" in changed.text
    assert "&gt; New words." in changed.text  # the new preview, to read before downloading
    assert not any(entry.startswith("supervision.export") for entry in _audit(svc))


@pytest.mark.parametrize(("fields", "message"), [
    ({"moment": []}, "Pick at least one moment"),
    ({"comment-18.0": "Tom seemed to matter here."},
     "&#39;Tom&#39; is still in the comment of moment 2, so nothing was exported."),
    ({"moment": ["7.5"]}, "There is no transcript line starting at 0:07"),
    ({"context": "lots"}, "The context is a number of lines"),
], ids=["nothing-picked", "name-in-comment", "unknown-line", "bad-context"])
def test_bad_input_is_refused_with_a_sentence_and_nothing_leaves(user, svc, session_id, fields,
                                                                  message):
    refused = _post(user, session_id, "md", previewed="0" * 64, **fields)
    assert refused.status_code == 400 and message in refused.text
    assert 'data-testid="supervision-preview"' not in refused.text
    assert _audit(svc) == []


def test_only_the_sessions_clinician_makes_an_excerpt_while_unlocked(app, user, svc, session_id):
    chen = colleague(app, svc)
    assert chen.get(_url(session_id)).status_code == 404
    svc.storage.share(session_id, 2, USER)
    refused = chen.get(_url(session_id))
    assert refused.status_code == 403 and "Only the clinician" in refused.text
    assert 'data-testid="supervision-link"' not in chen.get(f"/sessions/{session_id}").text
    svc.keys.lock()
    assert user.get(_url(session_id)).status_code != 200
    assert not any(name in " ".join(_audit(svc)) for name in NAMES)
