"""The case conceptualization drafted by the bundled model from a client's signed sessions.

Real SQLite, real age, real llama.cpp with SmolLM2-135M's weights, the shared series'
reference transcripts and signed notes written from facts.json. One drafting run (what
``holdnote draft --queued`` does) serves the module; the tests assert the grounding
rules (citations, content words, signed sessions of this client only), not the prose.
"""

from __future__ import annotations

import pytest

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.clients import formulation as types
from appliance.clients.formulation import NO_SIGNED_NOTES, NOTHING_YET, Citation
from appliance.drafting import verify
from appliance.drafting.formulation import check
from appliance.notes.facts import transcript_lines
from appliance.store import formulations as table
from appliance.store.db import Storage
from appliance.transcript import TranscriptResult
from appliance.transcription import commands
from appliance.transcription.formulations import FormulationRunner, signed_sources
from appliance.transcription.job import Job
from tests.conftest import PASSPHRASE, USER
from tests.drafting.conftest import drafting_config
from tests.drafting.formulation_data import WEEKS, Clock, add_session

pytestmark = pytest.mark.slow

TYPED = "Grew up with a critical father (my words, not the model's)."


def _user(storage: Storage, name: str) -> int:
    with storage.connect() as conn:  # a bare row for the foreign key; accounts are not under test
        return int(conn.execute("INSERT INTO users(username, password_hash, created_at) "
                                "VALUES(?, 'x', '2024-01-01')", (name,)).lastrowid)


@pytest.fixture(scope="module")
def world(tmp_path_factory, smollm2):
    """Client A: weeks 1-3 signed and week 2 again unsigned; client B (a colleague's): week 1 signed.

    The clinician typed into one P before the model ran; then ``holdnote draft --queued``.
    """
    cfg = drafting_config(tmp_path_factory.mktemp("formulation"))
    clock = Clock()
    storage = Storage(cfg.paths.data_dir, clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    keys.init(USER, PASSPHRASE)
    rivera = next(u.id for u in keys.users() if u.username == USER)
    chen = _user(storage, "dr.chen")
    recipient, identity = keys.recipient(), keys.identity()
    client_a, client_b = storage.create_client(rivera, b"a"), storage.create_client(chen, b"b")
    signed = [add_session(storage, clock, recipient, week, client_a, rivera) for week in WEEKS]
    unsigned = add_session(storage, clock, recipient, "week2", client_a, rivera, sign=False)
    other = add_session(storage, clock, recipient, "week1", client_b, chen)
    number = table.request(storage, client_a, USER)
    edited = [s if s.key != "predisposing" else types.Section(s.key, s.title, TYPED, edited=True)
              for s in types.empty_sections()]
    table.save(storage, client_a, number, types.seal(
        types.body_of(edited, approach="cbt", model=None, sessions={}), recipient), USER)
    assert commands.run_drafts(cfg, language_model=smollm2) == 0
    return {"cfg": cfg, "storage": storage, "identity": identity, "a": client_a, "b": client_b,
            "signed": signed, "unsigned": unsigned, "other": other, "keys": keys,
            "drafted": types.newest(storage, client_a, identity)}


def lines_of(world, session_id: int):
    raw = world["storage"].load_transcript(session_id)
    return transcript_lines(TranscriptResult.from_bytes(age.decrypt(raw, [world["identity"]])).segments)


def test_every_kept_statement_cites_a_line_of_a_signed_session_of_that_client(world):
    drafted = world["drafted"]
    assert (drafted.state, drafted.progress, drafted.version) == ("draft", 1.0, 1)
    kept = [s for section in drafted.sections for s in section.statements if s.verified]
    assert kept, "the model's sentences should pass the check on the series"
    for statement in kept:
        for citation in statement.citations:
            assert citation.session_id in world["signed"]
            line = next(x for x in lines_of(world, citation.session_id) if x.start == citation.start_s)
            words = {w[:4] for w in verify.normalise(line.text).split() if len(w) >= 4}
            said = {w[:4] for w in verify.normalise(statement.text).split() if len(w) >= 4}
            assert words & said, (statement.text, line.text)
    cited = {c.session_id for section in drafted.sections for s in section.statements
             for c in s.citations}
    assert world["unsigned"] not in cited and world["other"] not in cited


def test_each_p_shows_its_kept_statements_with_session_and_time_or_says_nothing_yet(world):
    drafted = world["drafted"]
    assert [s.key for s in drafted.sections] == [key for key, _, _ in types.FIVE_PS]
    for section in drafted.sections:
        if section.edited:
            continue
        kept = [s for s in section.statements if s.verified]
        if not kept:
            assert section.text == NOTHING_YET
        for statement in kept:
            label = types.cite_label(statement.citations[0], drafted.sessions)
            assert f"{statement.text} [{label}]" in section.text
            assert label.split()[1] == "Oct"  # the session's date, then the line's time


def test_what_the_clinician_typed_before_the_draft_is_kept(world):
    typed = next(s for s in world["drafted"].sections if s.key == "predisposing")
    assert (typed.text, typed.edited) == (TYPED, True)


def test_no_line_the_risk_screen_flagged_is_restated(world):
    week3 = world["signed"][2]
    raw = world["storage"].load_transcript(week3)
    flagged = {f.start for f in TranscriptResult.from_bytes(age.decrypt(raw, [world["identity"]])).flags}
    assert flagged
    cited = {c.start_s for section in world["drafted"].sections for s in section.statements
             for c in s.citations if c.session_id == week3}
    assert not cited & flagged


def sources(world):
    found, _ = signed_sources(world["cfg"], world["storage"], world["a"], world["identity"])
    return found


def test_the_check_drops_a_citation_of_another_clients_session_or_a_made_up_time(world):
    found = sources(world)
    assert {s.session_id for s in found} == set(world["signed"])  # not the unsigned session
    first = lines_of(world, world["signed"][0])[1]  # "Since my promotion three months ago…"
    text = "The client said they have been having panic attacks at work since a promotion."
    assert check(text, Citation(world["signed"][0], first.start), found).verified
    assert check(text, Citation(world["other"], first.start), found) is None
    assert check(text, Citation(world["unsigned"], first.start), found) is None
    assert check(text, Citation(world["signed"][0], first.start + 7.0), found) is None


def test_the_check_keeps_out_words_the_cited_line_does_not_have_and_any_risk_language(world):
    found = sources(world)
    first = lines_of(world, world["signed"][0])[1]
    invented = check("The client said their parrot wakes them every night.",
                     Citation(world["signed"][0], first.start), found)
    assert invented is not None and not invented.verified and "parrot" in invented.problem
    week3 = world["signed"][2]
    risky = next(x for x in lines_of(world, week3) if "point" in x.text.lower())
    summary = check("The client wonders what the point is and has thoughts of suicide.",
                    Citation(week3, risky.start), found)
    assert summary is not None and not summary.verified and "risk" in summary.problem


def test_a_client_without_a_signed_note_gets_the_reason_and_no_model_is_loaded(world):
    storage, identity = world["storage"], world["identity"]
    lonely = storage.create_client(1, b"c")
    number = table.request(storage, lonely, USER)

    def no_model():
        raise AssertionError("the model must not be loaded for a client with nothing signed")

    runner = FormulationRunner(world["cfg"], storage, AuditLog(storage),
                               recipient=world["keys"].recipient, model=no_model)
    assert runner.run(identity) == 0
    row = table.version(storage, lonely, number)
    assert (row.state, row.reason) == ("failed", NO_SIGNED_NOTES)


def test_the_audit_says_what_was_drafted_with_ids_and_counts_only(world):
    entries = [e for e in AuditLog(world["storage"]).entries() if e.action == "formulation.drafted"]
    assert [e.detail.split(",")[0] for e in entries] == [f"client {world['a']}"]
    assert not any(word in entries[0].detail for word in ("panic", "sister", "promotion"))


def test_the_overnight_job_drafts_one_asked_for_on_the_page(world, smollm2):
    """A case conceptualization queued while no service ran is drafted by the night's job."""
    storage = world["storage"]
    number = table.request(storage, world["a"], USER)  # the newest draft, queued again
    job = Job(world["cfg"], storage=storage, keys=world["keys"], language_model=smollm2,
              recorder_status=lambda: None)
    assert job.run() == 0  # nothing to transcribe, no note waiting
    assert table.version(storage, world["a"], number).state == "draft"
