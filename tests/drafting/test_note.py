"""Statements into the note: verified ones in the text, prompts gone, the clinician's text kept."""

from __future__ import annotations

import copy

from appliance import config as config_mod
from appliance.drafting import note as drafted
from appliance.drafting.settings import PracticeSettings
from appliance.notes import render
from appliance.notes.draft import build_draft_note
from appliance.transcript import Metrics, RiskFlag

FLAG = RiskFlag("passive wish, no plan stated", 83.4, 88.0, "Client",
                "Not a plan, it is more like a wish that everything would stop.", False, "wish")


def machine_note(template: str = "SOAP") -> dict:
    metrics = Metrics(talk_time_s={"Client": 60.0}, talk_share={"Client": 1.0}, turns=3,
                      word_count=120, words_per_minute={"Client": 120.0},
                      longest_silence_s=2.0, duration_s=120.0)
    return build_draft_note(template, session_date="2026-12-01", duration_s=120.0, metrics=metrics,
                            silences=[], flags=[FLAG], bookmarks=[], speakers=["Client"])


def fill_all(note: dict, statements: list[dict]) -> dict:
    for section in note["sections"]:
        if section["drafted"]:
            drafted.put_section(note, section["key"], statements, 0)
    return note


OK = {"text": "The client slept badly.", "citations": [9.4], "verified": True, "problem": None}
MARKED = {"text": "The client slept six hours.", "citations": [9.4], "verified": False,
          "problem": "the number 6 is not in the cited lines"}


def test_before_drafting_the_note_cannot_be_signed_and_after_it_can():
    note = drafted.start(machine_note(), PracticeSettings(), None, "test model")
    assert render.unfilled_sections(note) == ["Subjective", "Assessment", "Plan"]
    fill_all(note, [OK])
    assert render.unfilled_sections(note) == []


def test_only_verified_statements_reach_the_text_with_their_times():
    note = fill_all(drafted.start(machine_note(), PracticeSettings(), None, "m"), [OK, MARKED])
    subjective = note["sections"][0]
    assert render.section_text(subjective) == "The client slept badly. (0:09)"
    assert "six hours" not in render.note_to_text(note)
    assert subjective["statements"][1]["problem"].startswith("the number 6")


def test_a_section_with_nothing_verified_says_not_discussed_and_keeps_the_clinicians_part():
    note = fill_all(drafted.start(machine_note(), PracticeSettings(), None, "m"), [MARKED])
    assessment = next(s for s in note["sections"] if s["key"] == "assessment")
    assert render.section_text(assessment) == "Not discussed."
    assert assessment["clinician"] in assessment["text"]  # still there for the clinician to write
    assert "clinical impression" not in render.note_to_markdown(note)  # never exported as text


def test_a_section_the_clinician_typed_in_is_not_written_over():
    note = drafted.start(machine_note(), PracticeSettings(), None, "m")
    note["sections"][0]["text"] = "My own words."
    before = copy.deepcopy(note["sections"][0]["text"])
    assert not drafted.put_section(note, "subjective", [OK], 0)
    assert note["sections"][0]["text"] == before
    assert note["sections"][0]["statements"] == [OK]


def test_facts_stay_in_the_facts_section_after_drafting_dap():
    note = fill_all(drafted.start(machine_note("DAP"), PracticeSettings("DAP"), None, "m"), [OK])
    data = note["sections"][0]
    assert data["key"] == "data" and "The client slept badly. (0:09)" in data["text"]
    assert "Recorded duration: 2:00." in data["text"]


def test_risk_flags_are_statements_in_their_own_words_with_their_time():
    [statement] = drafted.risk_statements([FLAG])
    assert FLAG.quote in statement["text"] and statement["citations"] == [83.4]
    assert "passive wish, no plan stated" in statement["text"] and "denial" not in statement["text"]


def test_a_custom_template_from_the_config_is_laid_out_with_a_facts_section():
    cfg = config_mod.from_dict({"notes": {"template": "Couples", "custom_templates": [
        {"name": "Couples", "sections": [
            {"key": "focus", "title": "Focus", "instruction": "What the couple worked on."},
            {"key": "reflection", "title": "Reflection", "clinician": "[Your reflection.]"}]}]}})
    settings = PracticeSettings.from_config(cfg)
    note = drafted.start(machine_note(), settings, None, "m")
    assert [s["title"] for s in note["sections"]] == ["Focus", "Reflection", "Session facts"]
    assert [s["drafted"] for s in note["sections"]] == [True, False, False]
    assert note["header"].startswith("Couples session note")


def test_what_the_clinician_typed_survives_a_new_layout_in_any_template():
    machine = machine_note()
    stored = copy.deepcopy(machine)
    stored["sections"][0]["text"] = "Client describes a hard week."     # subjective, typed
    stored["sections"][3]["text"] = machine["sections"][3]["prompt"]    # plan: still the prompt
    typed = drafted.typed_sections(stored, machine)
    assert typed == {"subjective": "Client describes a hard week."}
    soap = drafted.keep_typed(drafted.start(machine, PracticeSettings(), None, "m"), typed)
    assert soap["sections"][0]["text"] == "Client describes a hard week."
    assert not drafted.put_section(soap, "subjective", [OK], 0)  # the draft never writes over it
    dap = drafted.keep_typed(drafted.start(machine, PracticeSettings(), "DAP", "m"), typed)
    assert dap["kept_text"] == {"subjective": "Client describes a hard week."}


def test_a_drafted_section_counts_as_typed_only_once_the_clinician_changed_it():
    note = fill_all(drafted.start(machine_note(), PracticeSettings(), None, "m"), [OK])
    assert drafted.typed_sections(note, machine_note()) == {}
    note["sections"][3]["text"] += "\nCall the GP."
    assert list(drafted.typed_sections(note, machine_note())) == ["plan"]
