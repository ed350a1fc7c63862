"""The drafted note on the session page: statements with their citations, what the check left out.

Notes are built by hand in the format appliance/drafting/note.py writes,
and stored encrypted as the overnight job stores them; the model never runs.
"""

from __future__ import annotations

import copy
import re
from html import unescape
from html.parser import HTMLParser

from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    app,
    browser,
    clock,
    recovery,
    result,
    seed,
    svc,
    user,
)

MODEL = "SmolLM2-135M-Instruct Q4_1 (bundled)"
LINES = [(3.0, "Clinician", "How has the week been?"),
         (83.0, "Client", "I keep waking at 3 am, most nights really."),
         (91.5, "Client", "Then I lie there until five."),
         (120.25, "Clinician", "Shall we try a sleep diary this week?")]
IMPRESSION = "[Your clinical impression]"
KEPT = "The client reported waking at 3 am most nights."
DROPPED = "The client sleeps badly on Tuesdays."
PROBLEM = "\u201cTuesdays\u201d is not in the cited lines"


def drafted_note() -> dict:
    """A note the model drafted: a verified and an unverified statement, a clinician field."""
    return {
        "template": "SOAP", "status": "draft", "header": "Individual session",
        "drafting": {"state": "done", "model": MODEL, "reason": None, "dropped": 1,
                     "finished_at": "2024-05-07T03:00:00+00:00"},
        "sections": [
            {"key": "subjective", "title": "Subjective", "auto": False, "prompt": None,
             "drafted": True, "clinician": None, "text": KEPT,
             "statements": [
                 {"text": KEPT, "citations": [83.0, 91.5], "verified": True, "problem": None},
                 {"text": DROPPED, "citations": [83.0], "verified": False, "problem": PROBLEM}]},
            {"key": "objective", "title": "Objective", "auto": True, "prompt": None,
             "text": "Session length 2 min."},
            {"key": "assessment", "title": "Assessment", "auto": False, "prompt": IMPRESSION,
             "drafted": True, "clinician": IMPRESSION, "text": f"Not discussed.\n\n{IMPRESSION}",
             "statements": []},
            {"key": "plan", "title": "Plan", "auto": False, "prompt": None, "drafted": True,
             "clinician": None, "text": "A sleep diary this week.",
             "statements": [{"text": "A sleep diary this week.", "citations": [120.25],
                             "verified": True, "problem": None}]},
        ],
    }


def _seed(svc, clock, note: dict, **fields) -> int:
    res = result(LINES)
    return seed(svc, clock, started=START, res={**res.to_json(), "note": note}, **fields)


class _Page(HTMLParser):
    """The page's elements with their attributes, and each textarea's text."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.textareas: dict[str, str] = {}
        self._in: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        found = {k: v or "" for k, v in attrs}
        self.elements.append((tag, found))
        if tag == "textarea":
            self._in = found.get("name", "")
            self.textareas[self._in] = ""

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            self.textareas[self._in] += data

    def having(self, attribute: str, tag: str | None = None) -> list[dict]:
        """The attributes of every element (of ``tag``) that has ``attribute``."""
        return [a for t, a in self.elements if attribute in a and tag in (None, t)]


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- what the page shows ------------------------------------------------------------------------


def test_each_citation_links_to_its_transcript_line_on_the_same_page(user, svc, clock):
    session_id = _seed(svc, clock, drafted_note())
    page = _Page(user.get(f"/sessions/{session_id}").text)
    cites = [a for a in page.having("data-start", "a") if "cite" in a.get("class", "")]
    lines = {a["data-start"]: a for a in page.having("data-start", "li")}
    ids = {a["id"] for _, a in page.elements if "id" in a}
    assert [c["data-start"] for c in cites] == ["83.0", "91.5", "120.25"]
    for cite in cites:
        assert cite["data-start"] in lines, f"no transcript line starts at {cite['data-start']}"
        assert cite["href"].lstrip("#") in ids, f"{cite['href']} leads nowhere"
    # The clock times the transcript shows for those lines.
    assert [c["aria-label"] for c in cites] == [
        "Transcript at 1:23", "Transcript at 1:31", "Transcript at 2:00"]


def test_a_statement_the_check_left_out_is_shown_beside_its_section_never_in_its_text(
        user, svc, clock):
    session_id = _seed(svc, clock, drafted_note())
    html = user.get(f"/sessions/{session_id}").text
    page = _Page(html)
    assert DROPPED not in " ".join(page.textareas.values())
    assert page.textareas["section-subjective"] == KEPT
    left = re.search(r'<ul class="left-out" data-testid="left-out-subjective">.*?</ul>', html, re.DOTALL)
    assert left, "the left-out statement is not listed under its section"
    assert _text(left.group(0)) == f"Left out by the check: {DROPPED} \u2014 {PROBLEM}"


def test_the_banner_names_the_model_and_the_clinicians_own_field_is_marked(user, svc, clock):
    session_id = _seed(svc, clock, drafted_note())
    html = user.get(f"/sessions/{session_id}").text
    banner = re.search(r'data-testid="drafted-banner">(.*?)</div>', html, re.DOTALL)
    assert banner and _text(banner.group(1)) == (
        f"Drafted by {MODEL} \u2014 check every statement against the transcript before signing.")
    label = re.search(r'<label for="sec-assessment">(.*?)</label>', html, re.DOTALL)
    assert "For you to write" in _text(label.group(1))
    assert "For you to write" not in re.search(
        r'<label for="sec-subjective">(.*?)</label>', html, re.DOTALL).group(1)


def test_a_citation_to_a_moment_not_in_the_transcript_is_no_link(user, svc, clock):
    note = drafted_note()
    note["sections"][3]["statements"][0]["citations"] = [999.0]
    session_id = _seed(svc, clock, note)
    html = user.get(f"/sessions/{session_id}").text
    assert 'data-testid="citation-missing">16:39<' in html
    assert 'data-start="999.0"' not in html


def test_a_signed_drafted_note_keeps_its_citations_without_the_check_banner(user, svc, clock):
    note = drafted_note()
    note["sections"][2]["text"] = "Low mood with early waking; no risk indicators discussed."
    session_id = _seed(svc, clock, note)
    page = user.get(f"/sessions/{session_id}").text
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    signed = user.submit(f"/sessions/{session_id}/note", {
        "version": version, "action": "sign", "reviewed": "yes",
        "section-assessment": note["sections"][2]["text"]}, page=f"/sessions/{session_id}")
    assert signed.status_code == 302, signed.text
    html = user.get(f"/sessions/{session_id}").text
    assert 'data-testid="note-readonly"' in html
    assert html.count('data-testid="citation"') == 3
    assert "drafted-banner" not in html and "redraft-form" not in html


def test_an_old_note_renders_as_before(user, svc, clock):
    res = result(LINES, sections={"subjective": "Evenings remain hard."})
    session_id = seed(svc, clock, started=START, res=res)
    html = user.get(f"/sessions/{session_id}").text
    page = _Page(html)
    for marker in ("drafted-banner", "drafting-state", "grounding", "left-out", "For you to write",
                   'class="cite'):
        assert marker not in html, marker
    # The note's own fields (the private process note beside it is a form of its own).
    note_fields = {k: v for k, v in page.textareas.items() if k.startswith("section-")}
    assert note_fields == {"section-subjective": "Evenings remain hard.",
                              "section-objective": "Session length 50 min.",
                              "section-assessment": "", "section-plan": ""}
    # Only the transcript lines carry a start.
    assert {a.get("class", "").split()[0] for a in page.having("data-start")} == {"seg"}


# --- the drafting state --------------------------------------------------------------------------


def _state_line(user, session_id: int) -> str:
    html = user.get(f"/sessions/{session_id}").text
    found = re.search(r'data-testid="drafting-state">(.*?)</p>', html, re.DOTALL)
    return _text(found.group(1)) if found else ""


def test_the_drafting_state_is_shown_above_the_note(user, svc, clock):
    queued = copy.deepcopy(drafted_note())
    queued["drafting"] = {"state": "queued", "model": None, "reason": None, "dropped": 0}
    session_id = _seed(svc, clock, queued)
    svc.storage.update_session(session_id, drafting="queued")
    assert _state_line(user, session_id).startswith("Drafting is queued: it runs at idle priority")

    svc.storage.update_session(session_id, drafting="drafting", drafting_progress=0.4)
    assert _state_line(user, session_id).startswith("Drafting now: 40 % done.")

    svc.storage.update_session(session_id, drafting="failed",
                               drafting_reason="The model file is truncated: reinstall it.")
    assert _state_line(user, session_id).startswith(
        "Drafting failed: The model file is truncated: reinstall it. The transcript and the "
        "facts are still here")

    svc.storage.update_session(session_id, drafting="off", drafting_reason=None)
    assert _state_line(user, session_id).startswith(
        "Drafting is off on this device: set [drafting] model")

    svc.storage.update_session(session_id, drafting="done")
    assert _state_line(user, session_id) == ""
    svc.storage.update_session(session_id, drafting="done",
                               drafting_reason="The model's answers could not be used.")
    assert _state_line(user, session_id) == "The model's answers could not be used."


def test_what_a_redraft_replaced_is_shown_beside_the_note_not_in_it(user, svc, clock):
    note = drafted_note()
    note["kept_text"] = {"Subjective": "My own words about the week.", "Plan": ""}
    session_id = _seed(svc, clock, note)
    html = user.get(f"/sessions/{session_id}").text
    block = re.search(r'data-testid="replaced-text">(.*?)</section>', html, re.DOTALL)
    assert block, "the clinician's replaced text is not shown"
    assert "Subjective My own words about the week." in _text(block.group(1))
    assert "Plan" not in _text(block.group(1))
    assert "My own words" not in " ".join(_Page(html).textareas.values())


def test_risk_flags_carried_verbatim_say_where_they_come_from(user, svc, clock):
    note = drafted_note()
    note["sections"][2]["statements"] = [{
        "text": "Risk language (automatic screen, verbatim): 1:31 Client: \u201cuntil five\u201d",
        "citations": [91.5], "verified": True, "problem": None, "source": "risk screen"}]
    session_id = _seed(svc, clock, note)
    html = user.get(f"/sessions/{session_id}").text
    block = re.search(r'data-testid="grounding-assessment">(.*?)</div>', html, re.DOTALL).group(1)
    assert "from the risk screen" in _text(block)
    assert 'data-start="91.5"' in block


def test_a_whole_second_citation_written_as_an_integer_still_finds_its_line(user, svc, clock):
    note = drafted_note()
    note["sections"][0]["statements"][0]["citations"] = [83, 91.5]  # JSON may say 83, not 83.0
    session_id = _seed(svc, clock, note)
    page = _Page(user.get(f"/sessions/{session_id}").text)
    lines = {a["data-start"] for a in page.having("data-start", "li")}
    cites = [a for a in page.having("data-start", "a") if "cite" in a.get("class", "")]
    assert cites[0]["data-start"] == "83.0" and "83.0" in lines
    assert cites[0]["href"] == "#t-83"
