"""The overnight job: sessions in, encrypted drafts out; locked devices, the night window,
pausing for the recorder, resuming after a kill, failures that keep the audio, retention.

Real SQLite, real age encryption, real faster-whisper tiny.en; the recorder
daemon is replaced by its control socket answering what a test needs, and the
clock is passed in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time as _time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.errors import AudioFormatError, InvalidStateError, PayloadError
from appliance.recorder.control import ControlServer
from appliance.store.db import State, Storage
from appliance.transcript import CURRENT_VERSION, TranscriptResult
from appliance.transcription import commands
from appliance.transcription.checkpoints import Checkpoints
from appliance.transcription.job import RECORDING_REASON, night_deadline
from appliance.transcription.pipeline import Pipeline, Settings
from tests.conftest import make_config
from tests.transcription.test_asr import RATE, load, recorder_stream
from web_ui.views import transcript as transcript_view

pytestmark = pytest.mark.usefixtures("recovery_key")


class Clock:
    """A settable clock (aware, local time zone)."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def local(year=2025, month=3, day=4, hour=1, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute).astimezone()


def add_session(storage: Storage, recipient, audio: np.ndarray | None, *, channels: int = 1,
                state: State = State.RECORDED, bookmarks=(), cut_at: int | None = None,
                raw: bytes | None = None, error: str | None = None):
    """A session as the recorder leaves it: an age-encrypted WAV stream and a row."""
    session = storage.create_session(channels=channels)
    if raw is None:
        sealed = age.encrypt(recorder_stream(audio, channels), [recipient])
        raw = sealed[:cut_at] if cut_at else sealed
    session.audio_path.write_bytes(raw)
    seconds = 0.0 if audio is None else len(audio) / RATE
    storage.transition(session.id, state, ended_at=storage.now(),
                       duration_s=seconds, error=error)
    for mark in bookmarks:
        storage.add_bookmark(session.id, mark)
    return storage.get_session(session.id)


def walk(storage: Storage, session_id: int, *states: State, **fields) -> None:
    """Move a session through ``states`` the way the job would; ``fields`` go with the last."""
    for state in states[:-1]:
        storage.transition(session_id, state)
    storage.transition(session_id, states[-1], **fields)


def decrypt_json(blob: bytes, keystore: KeyStore):
    return json.loads(age.decrypt(blob, [keystore.identity()]))


def result_of(storage: Storage, keystore: KeyStore, session_id: int) -> dict:
    return decrypt_json(storage.load_transcript(session_id), keystore)


def actions(storage: Storage) -> list[tuple[str, str, int | None]]:
    entries = AuditLog(storage).entries(newest_first=False)
    return [(e.actor, e.action, e.session_id) for e in entries if e.actor == "transcriber"]


@pytest.fixture(scope="module")
def dialogue(testdata_dir) -> dict[str, np.ndarray]:
    """The short test recordings, decoded once."""
    speech = testdata_dir / "speech"
    return {
        "jfk": load(speech / "jfk.flac").mean(axis=1),
        "sleep_stereo": load(speech / "dialogue" / "sleep.stereo.wav"),
        "sleep": load(speech / "dialogue" / "sleep.mono.wav")[:, 0],
    }


@pytest.fixture(scope="module")
def testdata_dir() -> Path:
    from tests.conftest import TESTDATA

    if not TESTDATA.is_dir():
        pytest.skip(f"test data not found at {TESTDATA}")
    return TESTDATA


@pytest.fixture
def audio_retention():
    """``retention.audio`` for ``job_cfg`` (a test parametrizes it to try another choice)."""
    return "delete_after_signing"


@pytest.fixture
def job_cfg(tmp_path, audio_retention):
    """One-minute windows, so a two-minute recording takes several windows."""
    return make_config(tmp_path, transcription={"window_minutes": 1.0},
                       retention={"audio": audio_retention})


@pytest.fixture
def clock():
    return Clock(local(hour=1))


@pytest.fixture
def store(job_cfg, clock):
    return Storage(job_cfg.paths.data_dir, clock)


@pytest.fixture
def keys(job_cfg, store, recovery_key):
    return KeyStore(store, job_cfg.paths.runtime_dir, work_factor=10)


def quantized(audio: np.ndarray) -> np.ndarray:
    """What reading back a recording of ``audio`` gives (16-bit samples)."""
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").astype(np.float32) / 32768


def long_audio(dialogue) -> np.ndarray:
    """About 2.5 minutes: three one-minute windows."""
    return np.concatenate([dialogue["sleep"], dialogue["jfk"], dialogue["sleep"][:int(35 * RATE)]])


# --- the normal night ----------------------------------------------------------------------


def test_a_recorded_session_becomes_an_encrypted_draft(job_cfg, store, keys, clock, recognizer,
                                                      dialogue):
    session = add_session(store, keys.recipient(), dialogue["sleep_stereo"], channels=2,
                          bookmarks=(81.0,))
    assert commands.run_job(job_cfg, overnight=True, now=clock, recognizer=recognizer) == 0

    done = store.get_session(session.id)
    assert done.state == State.DRAFT and done.progress == 1.0 and done.transcribed_at
    raw = store.load_transcript(session.id)
    assert b"burden" not in raw and raw.startswith(b"age-encryption.org/v1")
    result = decrypt_json(raw, keys)
    assert {"version", "duration_s", "model", "language", "segments", "silences", "metrics",
            "flags", "bookmarks", "note", "salvaged", "warnings"} <= set(result)
    assert result["version"] == CURRENT_VERSION
    assert TranscriptResult.from_json(result).to_json() == result  # stored as the typed result
    assert {s["speaker"] for s in result["segments"]} == {"Clinician", "Client"}
    assert any("burden" in s["text"] for s in result["segments"])
    note = decrypt_json(store.load_note(session.id)["note_enc"], keys)
    assert note == result["note"] and note["status"] == "draft"
    assert store.load_note(session.id)["updated_by"] == "holdnote"
    counts = decrypt_json(done.flags_enc, keys)
    assert sum(c["count"] for c in counts) == len(result["flags"]) > 0
    assert [b["offset"] for b in result["bookmarks"]] == [81.0]
    # Retention default: the audio stays until the note is signed.
    assert session.audio_path.exists() and done.audio_deleted_at is None
    assert actions(store) == [("transcriber", "transcribe.done", session.id)]
    with store.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0


def test_oldest_first_and_one_bad_recording_leaves_the_others_alone(job_cfg, store, keys, clock,
                                                                    recognizer, dialogue):
    recipient = keys.recipient()
    damaged = add_session(store, recipient, None, raw=os.urandom(5000))
    clock.at += timedelta(minutes=1)
    good = add_session(store, recipient, dialogue["jfk"])
    clock.at += timedelta(minutes=1)
    missing = add_session(store, recipient, dialogue["jfk"])
    missing.audio_path.unlink()
    clock.at += timedelta(minutes=1)
    empty = add_session(store, recipient, np.zeros(0, np.float32))

    assert commands.run_job(job_cfg, now=clock, recognizer=recognizer) == 0

    assert store.get_session(good.id).state == State.DRAFT
    for bad, words in ((damaged, "not a supported audio file"), (missing, "missing"),
                       (empty, "holds no audio")):
        failed = store.get_session(bad.id)
        assert failed.state == State.FAILED
        assert words in failed.error
    assert damaged.audio_path.exists() and empty.audio_path.exists()  # never deleted on failure
    assert [sid for _, action, sid in actions(store) if action.startswith("transcribe.")] == [
        damaged.id, good.id, missing.id, empty.id]


def test_an_interrupted_recording_is_salvaged_and_says_so(job_cfg, store, keys, clock,
                                                         recognizer, dialogue):
    audio = np.concatenate([dialogue["jfk"], np.zeros(RATE * 10, np.float32)])
    sealed = age.encrypt(recorder_stream(audio), [keys.recipient()])
    session = add_session(store, keys.recipient(), audio, state=State.INTERRUPTED,
                          cut_at=len(sealed) - 70000,
                          error="Recording interrupted: power loss; about 0:19 can be recovered")
    commands.run_job(job_cfg, now=clock, recognizer=recognizer)

    assert store.get_session(session.id).state == State.DRAFT
    result = result_of(store, keys, session.id)
    assert result["salvaged"] is True
    assert any("could be read" in w and "cut off" in w for w in result["warnings"])
    assert any("power loss" in w for w in result["warnings"])
    assert "ask not what your country" in " ".join(s["text"] for s in result["segments"]).lower()


# --- a damaged recording ---------------------------------------------------------------------


def flip_byte(path: Path, plaintext_offset: int) -> None:
    """XOR one byte of the chunk that holds ``plaintext_offset``, as a bad SD card sector would."""
    sealed = bytearray(path.read_bytes())
    payload_start = sealed.index(b"\n--- ") + len("\n--- ") + 43 + 1 + 16  # header, nonce
    chunk = plaintext_offset // age.CHUNK_SIZE
    sealed[payload_start + chunk * (age.CHUNK_SIZE + 16) + 1000] ^= 0x01
    path.write_bytes(bytes(sealed))


def chunk_seconds(chunk: int) -> tuple[float, float]:
    """Where chunk ``chunk`` of a 16 kHz mono recording lies in its audio, in seconds."""
    from appliance.recorder.capture import WAV_HEADER_BYTES

    per_second = RATE * 2
    return ((chunk * age.CHUNK_SIZE - WAV_HEADER_BYTES) / per_second,
            ((chunk + 1) * age.CHUNK_SIZE - WAV_HEADER_BYTES) / per_second)


def lines_from(result: dict, after: float) -> list[tuple[float, str]]:
    """(start, text) of the transcript lines that start at ``after`` or later."""
    return [(s["start"], s["text"].strip().lower()) for s in result["segments"]
            if s["start"] >= after]


def words(lines: list[tuple[float, str]]) -> str:
    return " ".join(re.findall(r"[a-z']+", " ".join(text for _, text in lines)))


@pytest.mark.parametrize("audio_retention", ["delete_after_transcription"])
def test_a_flipped_bit_costs_two_seconds_not_the_rest_and_keeps_the_audio(
        job_cfg, store, keys, clock, recognizer, dialogue, caplog, tmp_path):
    audio = np.concatenate([dialogue["jfk"], np.zeros(RATE * 2, np.float32), dialogue["jfk"]])
    intact = add_session(store, keys.recipient(), audio)
    damaged = add_session(store, keys.recipient(), audio)
    flip_byte(damaged.audio_path, 3 * age.CHUNK_SIZE)  # the fourth of 12 chunks
    gap_start, gap_end = chunk_seconds(3)

    with caplog.at_level("WARNING", logger="appliance.transcription.job"):
        assert commands.run_job(job_cfg, now=clock, recognizer=recognizer) == 0

    done = store.get_session(damaged.id)
    assert done.state == State.DRAFT
    result, reference = result_of(store, keys, damaged.id), result_of(store, keys, intact.id)
    # All of the audio after the gap is transcribed, at the times the intact recording gives.
    assert result["duration_s"] == reference["duration_s"]
    # (Whisper's wording and line breaks vary a little from run to run: phrases, not lines.)
    phrase = "ask what you can do for your country"
    first_reading_end = len(dialogue["jfk"]) / RATE
    right_after = [line for line in lines_from(result, gap_end) if line[0] < first_reading_end]
    assert right_after and phrase in words(right_after)  # the rest of the first reading
    second_half = lines_from(result, first_reading_end + 1)  # the second reading
    for spoken in ("and so my fellow americans ask not what your country", phrase):
        assert spoken in words(second_half)
    # The second reading starts 2 s after the first ends; had the gap been dropped rather
    # than kept as silence, its time would show 2 s early.
    assert second_half[0][0] == pytest.approx(first_reading_end + 2, abs=1.0)
    assert result["gaps"] == [{"start": round(gap_start, 2), "end": round(gap_end, 2)}]
    assert done.unreadable_s == pytest.approx(gap_end - gap_start, abs=0.01) and done.unreadable_s > 2
    assert store.get_session(intact.id).unreadable_s == 0
    # The session page shows the gap in place.
    timeline = str(transcript_view.timeline_html(transcript_view.build(
        TranscriptResult.from_json(result))))
    assert f"2 s unreadable at 0:0{int(gap_start)}" in timeline
    # The journal has a warning, the audit log an entry, and the audio stays.
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "could not be read" in
              r.getMessage()]
    assert warned and f"session {damaged.id}" in warned[0].getMessage()
    assert ("transcriber", "transcribe.unreadable", damaged.id) in actions(store)
    assert ("transcriber", "retention.audio_kept", damaged.id) in actions(store)
    assert damaged.audio_path.exists() and done.audio_deleted_at is None
    assert not intact.audio_path.exists()  # delete_after_transcription still applies to the rest
    unreadable = next(e for e in AuditLog(store).entries() if e.action == "transcribe.unreadable")
    assert "burden" not in unreadable.detail and "country" not in unreadable.detail

    # Normal reading still refuses the file, ours and the stock tool's.
    with pytest.raises(PayloadError):
        age.decrypt(damaged.audio_path.read_bytes(), [keys.identity()])
    if stock_age := shutil.which("age"):
        (tmp_path / "key.txt").write_text(f"{keys.identity()}\n")
        stock = subprocess.run([stock_age, "-d", "-i", str(tmp_path / "key.txt"),
                                str(damaged.audio_path)], capture_output=True, check=False)
        assert stock.returncode != 0 and len(stock.stdout) < 4 * age.CHUNK_SIZE


def test_a_damaged_first_chunk_loses_its_header_but_not_the_recording(
        job_cfg, store, keys, clock, recognizer, dialogue):
    audio = np.concatenate([np.zeros(RATE * 3, np.float32), dialogue["jfk"]])
    session = add_session(store, keys.recipient(), audio)
    flip_byte(session.audio_path, 0)  # the chunk holding the WAV header
    commands.run_job(job_cfg, now=clock, recognizer=recognizer)

    done = store.get_session(session.id)
    assert done.state == State.DRAFT
    result = result_of(store, keys, session.id)
    # The session's format stands in for the header: the gap starts at 0:00 and times hold.
    assert result["gaps"] == [{"start": 0.0, "end": round(chunk_seconds(0)[1], 2)}]
    assert result["duration_s"] == pytest.approx(len(audio) / RATE, abs=0.01)
    assert "ask not what your country" in " ".join(s["text"] for s in result["segments"]).lower()
    assert done.unreadable_s > 0 and session.audio_path.exists()


def test_transcribe_file_explains_a_damaged_header_it_cannot_stand_in_for(
        keys, dialogue, tmp_path):
    from appliance.recorder.capture import WAV_HEADER_BYTES
    from appliance.transcription.reader import RECORDER_HEADER_BYTES, open_audio

    assert RECORDER_HEADER_BYTES == WAV_HEADER_BYTES
    path = tmp_path / "rec.wav.age"
    path.write_bytes(age.encrypt(recorder_stream(dialogue["jfk"]), [keys.recipient()]))
    flip_byte(path, 0)
    with pytest.raises(AudioFormatError, match="hold its WAV header, are damaged"):
        open_audio(path, [keys.identity()])


def test_retention_never_deletes_the_audio_of_a_damaged_recording(tmp_path, recovery_key,
                                                                  dialogue):
    cfg = make_config(tmp_path, retention={"audio": "keep_days", "audio_keep_days": 7,
                                           "session_keep_days": 30})
    clock = Clock(local(month=1, day=2, hour=1))
    storage = Storage(cfg.paths.data_dir, clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    sessions = {}
    for name, unreadable in (("whole", 0.0), ("damaged", 2.05)):
        session = add_session(storage, keys.recipient(), dialogue["jfk"])
        walk(storage, session.id, State.TRANSCRIBING, State.DRAFT, transcribed_at=clock.at,
             unreadable_s=unreadable)
        sessions[name] = session
    clock.at = local(month=1, day=20, hour=1)  # past audio_keep_days
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    assert not sessions["whole"].audio_path.exists()
    assert sessions["damaged"].audio_path.exists()

    clock.at = local(month=3, day=4, hour=1)  # past session_keep_days too
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    assert {s.id for s in storage.list_sessions()} == {sessions["damaged"].id}
    assert sessions["damaged"].audio_path.exists()


def test_a_silent_recording_gives_an_empty_transcript_not_invented_text(job_cfg, store, keys,
                                                                       clock, recognizer):
    hiss = (np.random.default_rng(3).standard_normal(RATE * 90) * 0.002).astype(np.float32)
    session = add_session(store, keys.recipient(), hiss)
    commands.run_job(job_cfg, now=clock, recognizer=recognizer)

    assert store.get_session(session.id).state == State.DRAFT
    result = result_of(store, keys, session.id)
    assert result["segments"] == [] and result["flags"] == []
    assert any("No speech" in w for w in result["warnings"])
    assert result["note"]["status"] == "draft"


# --- when it must not run, or must stop ------------------------------------------------------


def never_load():
    raise AssertionError("the model must not be loaded")


def test_a_locked_device_leaves_sessions_waiting_without_failing_them(job_cfg, store, keys,
                                                                      clock, dialogue):
    session = add_session(store, keys.recipient(), dialogue["jfk"])
    keys.lock()
    assert commands.run_job(job_cfg, overnight=True, now=clock, recognizer=never_load) == 0
    waiting = store.get_session(session.id)
    assert waiting.state == State.RECORDED
    assert "locked" in waiting.waiting_reason.lower() and "log in" in waiting.waiting_reason
    assert session.audio_path.exists()


def test_outside_the_night_window_nothing_is_transcribed(job_cfg, store, keys, clock, dialogue):
    session = add_session(store, keys.recipient(), dialogue["jfk"])
    clock.at = local(hour=14)
    assert commands.run_job(job_cfg, overnight=True, now=clock, recognizer=never_load) == 0
    waiting = store.get_session(session.id)
    assert waiting.state == State.RECORDED and "00:30-06:30" in waiting.waiting_reason


def test_a_missing_model_leaves_sessions_waiting_and_names_the_key(tmp_path, dialogue,
                                                                   recovery_key):
    cfg = make_config(tmp_path, transcription={"model": "small.en"})
    storage = Storage(cfg.paths.data_dir)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    session = add_session(storage, keys.recipient(), dialogue["jfk"])
    assert commands.run_job(cfg) == 1
    waiting = storage.get_session(session.id)
    assert waiting.state == State.RECORDED
    assert "transcription.model" in waiting.waiting_reason


def test_end_of_night_stops_and_next_night_resumes_to_the_same_transcript(
        job_cfg, store, keys, clock, recognizer, dialogue, reference_result):
    later = add_session(store, keys.recipient(), dialogue["jfk"])
    session = add_session(store, keys.recipient(), long_audio(dialogue))
    clock.at = local(hour=6, minute=28)
    calls = []

    def recorder_idle_while_time_passes():
        calls.append(1)
        if len(calls) == 3:  # as the long session starts: it gets one window
            clock.at = local(hour=6, minute=31)
        return "idle"

    commands.run_job(job_cfg, overnight=True, now=clock, recognizer=recognizer,
                       recorder_status=recorder_idle_while_time_passes)
    # `later` was created first, so it ran first; the long one stopped after its window.
    assert store.get_session(later.id).state == State.DRAFT
    paused = store.get_session(session.id)
    assert paused.state == State.TRANSCRIBING and 0 < paused.progress < 1
    assert "night window ended at 06:30" in paused.waiting_reason
    assert session.audio_path.exists()

    clock.at = local(day=5, hour=0, minute=45)
    commands.run_job(job_cfg, overnight=True, now=clock, recognizer=recognizer)
    assert store.get_session(session.id).state == State.DRAFT
    assert result_of(store, keys, session.id)["segments"] == reference_result["segments"]


@pytest.fixture
def reference_result(job_cfg, recognizer, dialogue) -> dict:
    """The long recording transcribed in one uninterrupted run."""
    from appliance.transcription.reader import AudioReader, ReadStatus

    audio = quantized(long_audio(dialogue))
    blocks = iter([audio[i:i + RATE * 7, None] for i in range(0, len(audio), RATE * 7)])
    reader = AudioReader(blocks, 1, RATE, ReadStatus())
    return Pipeline(recognizer, Settings.from_config(job_cfg)).run(reader).to_json()


class FakeRecorder:
    """The recorder's control socket, answering with a state the test sets."""

    def __init__(self, path: Path, state: str = "idle"):
        self.state = state
        self.requests = 0
        self.server = ControlServer(path, self.answer)

    def answer(self, request: dict) -> dict:
        self.requests += 1
        return {"ok": True, "state": self.state(self.requests) if callable(self.state)
                else self.state}

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.close()


def wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = _time.monotonic() + timeout
    while not predicate():
        if _time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        _time.sleep(0.05)


def test_the_job_waits_while_the_recorder_records(job_cfg, store, keys, clock, recognizer,
                                                   dialogue):
    session = add_session(store, keys.recipient(), dialogue["jfk"])
    with FakeRecorder(job_cfg.paths.recorder_socket, "recording") as recorder:
        worker = threading.Thread(target=commands.run_job, args=(job_cfg,),
                                  kwargs={"now": clock, "recognizer": recognizer, "poll_s": 0.05})
        worker.start()
        wait_for(lambda: store.get_session(session.id).waiting_reason == RECORDING_REASON,
                 "the pause")
        assert store.get_session(session.id).state == State.RECORDED
        recorder.state = "idle"
        worker.join(timeout=120)
    assert store.get_session(session.id).state == State.DRAFT
    assert store.get_session(session.id).waiting_reason is None


def test_stop_request_keeps_the_checkpoint_and_the_audio(job_cfg, store, keys, clock,
                                                        recognizer, dialogue):
    session = add_session(store, keys.recipient(), long_audio(dialogue))
    stop = threading.Event()

    def stop_after_first_window():
        if store.get_session(session.id).progress > 0:
            stop.set()
        return None

    commands.run_job(job_cfg, now=clock, recognizer=recognizer, stop=stop,
                       recorder_status=stop_after_first_window)
    stopped = store.get_session(session.id)
    assert stopped.state == State.TRANSCRIBING
    assert "Stopped before finishing" in stopped.waiting_reason
    assert Checkpoints(store).offset(session.id) > 50
    assert session.audio_path.exists()


# --- killed in the middle ----------------------------------------------------------------------


def write_config(cfg, path: Path) -> Path:
    lines = []
    for section, values in cfg.model_dump(mode="json").items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(config: Path, *args: str) -> subprocess.Popen:
    """``holdnote --config CONFIG ARGS`` in its own process; its log goes to a file beside."""
    log = config.with_suffix(f".{len(list(config.parent.glob('*.log')))}.log")
    with log.open("w") as handle:
        job = subprocess.Popen(
            [sys.executable, "-m", "appliance.app.cli", "--config", str(config), *args],
            stdout=handle, stderr=subprocess.STDOUT)
    job.log_path = log
    return job


def output(job: subprocess.Popen) -> str:
    return job.log_path.read_text()


@pytest.mark.slow
def test_a_killed_job_resumes_where_it_stopped_with_the_same_transcript(
        tmp_path, store, keys, dialogue):
    cli_cfg = make_config(tmp_path, transcription={"window_minutes": 1.0, "model": "bundled-tiny"})
    config = write_config(cli_cfg, tmp_path / "holdnote.toml")
    audio = dialogue["sleep"]  # two one-minute windows
    first = add_session(store, keys.recipient(), audio)
    second = add_session(store, keys.recipient(), audio)

    # An uninterrupted run in its own process, as the reference.
    whole = run_cli(config, "transcribe", "--session", str(first.id))
    assert whole.wait(timeout=600) == 0, output(whole)

    # The recorder "starts recording" after the first window: the job checkpoints and waits.
    with FakeRecorder(cli_cfg.paths.recorder_socket, lambda n: "idle" if n == 1 else "recording"):
        job = run_cli(config, "transcribe", "--session", str(second.id))
        wait_for(lambda: store.get_session(second.id).waiting_reason == RECORDING_REASON,
                 "the first checkpoint", timeout=600)
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    killed = store.get_session(second.id)
    assert killed.state == State.TRANSCRIBING
    assert Checkpoints(store).offset(second.id) > 50
    assert second.audio_path.exists()

    resumed = run_cli(config, "transcribe", "--session", str(second.id))
    assert resumed.wait(timeout=600) == 0, output(resumed)
    assert "resuming at" in output(resumed)
    assert store.get_session(second.id).state == State.DRAFT
    assert (result_of(store, keys, second.id)["segments"]
            == result_of(store, keys, first.id)["segments"])


@pytest.mark.slow
def test_sigterm_ends_the_job_cleanly_at_a_checkpoint(tmp_path, store, keys, dialogue):
    cli_cfg = make_config(tmp_path, transcription={"window_minutes": 1.0, "model": "bundled-tiny"})
    config = write_config(cli_cfg, tmp_path / "holdnote.toml")
    session = add_session(store, keys.recipient(), long_audio(dialogue))
    with FakeRecorder(cli_cfg.paths.recorder_socket, lambda n: "idle" if n == 1 else "recording"):
        job = run_cli(config, "transcribe")
        wait_for(lambda: store.get_session(session.id).waiting_reason == RECORDING_REASON,
                 "the first checkpoint", timeout=600)
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=60) == 0, output(job)
    stopped = store.get_session(session.id)
    assert stopped.state == State.TRANSCRIBING
    assert "Stopped before finishing" in stopped.waiting_reason


# --- explicit runs, locks, retention ---------------------------------------------------------


def test_one_session_on_request_and_a_retry_of_a_failed_one(job_cfg, store, keys, clock,
                                                           recognizer, dialogue):
    session = add_session(store, keys.recipient(), dialogue["jfk"])
    walk(store, session.id, State.TRANSCRIBING, State.FAILED, error="out of memory")
    assert commands.run_job(job_cfg, session_id=session.id, now=clock, recognizer=recognizer) == 0
    assert store.get_session(session.id).state == State.DRAFT
    with pytest.raises(InvalidStateError, match="is draft"):
        commands.run_job(job_cfg, session_id=session.id, now=clock, recognizer=recognizer)


def test_transcribe_now_takes_only_the_sessions_asked_for_whatever_the_time(
        job_cfg, store, keys, clock, recognizer, dialogue):
    recipient = keys.recipient()
    short = dialogue["jfk"][:RATE * 3]  # two are transcribed: keep them short
    asked = add_session(store, recipient, short)
    other = add_session(store, recipient, dialogue["jfk"])
    retried = add_session(store, recipient, short)
    walk(store, retried.id, State.TRANSCRIBING, State.FAILED, error="out of memory")
    failed = add_session(store, recipient, dialogue["jfk"])
    walk(store, failed.id, State.TRANSCRIBING, State.FAILED, error="out of memory")
    for session in (asked, retried):
        store.update_session(session.id, transcribe_requested_at=clock.at)
    clock.at = local(hour=14)  # outside the night window

    assert commands.run_job(job_cfg, queued=True, now=clock, recognizer=recognizer) == 0
    states = {s.id: (s.state, s.transcribe_requested_at) for s in store.list_sessions()}
    assert states == {asked.id: (State.DRAFT, None), retried.id: (State.DRAFT, None),
                      other.id: (State.RECORDED, None), failed.id: (State.FAILED, None)}
    assert ("transcriber", "transcribe.done", asked.id) in actions(store)

    # Nothing asked for: nothing done, whatever waits.
    before = actions(store)
    assert commands.run_job(job_cfg, queued=True, now=clock, recognizer=never_load) == 0
    assert actions(store) == before and store.get_session(other.id).state == State.RECORDED


def test_a_second_job_does_nothing_while_one_runs(job_cfg, store, keys, clock, dialogue):
    import fcntl

    session = add_session(store, keys.recipient(), dialogue["jfk"])
    job_cfg.paths.runtime_dir.mkdir(parents=True, exist_ok=True)
    with open(job_cfg.paths.runtime_dir / "transcribe.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert commands.run_job(job_cfg, now=clock, recognizer=never_load) == 0
    assert store.get_session(session.id).state == State.RECORDED


@pytest.mark.parametrize("run", [{"overnight": True}, {"queued": True}],
                         ids=["the night run", "transcribe now"])
def test_a_night_or_transcribe_now_run_waits_for_the_job_at_work_instead_of_giving_up(
        job_cfg, store, keys, clock, dialogue, run):
    """A Transcribe now job must not cost the night's queue, nor a Redraft the Transcribe now."""
    import fcntl
    import logging

    session = add_session(store, keys.recipient(), dialogue["jfk"])
    store.update_session(session.id, transcribe_requested_at=store.now())
    keys.lock()  # then the run's work is quick and visible: the session says why it waits
    waiting = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record):
            if "starts when it ends" in record.getMessage():
                waiting.set()

    seen, job_log = Seen(), logging.getLogger("appliance.transcription.job")
    level = job_log.level
    job_log.addHandler(seen)
    job_log.setLevel(logging.INFO)
    job_cfg.paths.runtime_dir.mkdir(parents=True, exist_ok=True)
    codes = []
    try:
        with open(job_cfg.paths.runtime_dir / "transcribe.lock", "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # a Transcribe now job at work
            night = threading.Thread(target=lambda: codes.append(commands.run_job(
                job_cfg, now=clock, recognizer=never_load, poll_s=0.05, **run)))
            night.start()
            assert waiting.wait(30), "the run gave up instead of waiting"
        night.join(30)
    finally:
        job_log.removeHandler(seen)
        job_log.setLevel(level)
    assert codes == [0]
    assert "log in" in store.get_session(session.id).waiting_reason


def test_lock_after_the_night_run(tmp_path, recovery_key, recognizer, dialogue):
    cfg = make_config(tmp_path, transcription={"lock_after": True})
    storage = Storage(cfg.paths.data_dir)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    add_session(storage, keys.recipient(), dialogue["jfk"])
    commands.run_job(cfg, overnight=True, now=Clock(local(hour=2)), recognizer=recognizer)
    assert not keys.is_unlocked()
    assert ("transcriber", "device.lock", None) in actions(storage)


def test_audio_kept_for_days_then_deleted(tmp_path, recovery_key, recognizer, dialogue):
    cfg = make_config(tmp_path, retention={"audio": "keep_days", "audio_keep_days": 7})
    clock = Clock(local(hour=1))
    storage = Storage(cfg.paths.data_dir, clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    session = add_session(storage, keys.recipient(), dialogue["jfk"])
    commands.run_job(cfg, overnight=True, now=clock, recognizer=recognizer)
    assert storage.get_session(session.id).state == State.DRAFT
    assert session.audio_path.exists()

    clock.at = local(day=10, hour=1)
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    assert session.audio_path.exists()
    clock.at = local(day=12, hour=1)
    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    assert not session.audio_path.exists()
    assert ("transcriber", "retention.audio_deleted", session.id) in actions(storage)


def test_old_sessions_are_deleted_but_never_untranscribed_ones(tmp_path, recovery_key, dialogue):
    cfg = make_config(tmp_path, retention={"session_keep_days": 30})
    clock = Clock(local(month=1, day=2, hour=1))
    storage = Storage(cfg.paths.data_dir, clock)
    keys = KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)
    old_done = add_session(storage, keys.recipient(), dialogue["jfk"])
    walk(storage, old_done.id, State.TRANSCRIBING, State.DRAFT)  # signed ones: test_retention
    keys.lock()  # so the waiting session stays waiting, however old it gets
    old_waiting = add_session(storage, keys.recipient(), dialogue["jfk"])
    clock.at = local(month=3, day=4, hour=1)
    recent = add_session(storage, keys.recipient(), dialogue["jfk"])
    walk(storage, recent.id, State.TRANSCRIBING, State.DRAFT, State.SIGNED)

    commands.run_job(cfg, overnight=True, now=clock, recognizer=never_load)
    remaining = {s.id for s in storage.list_sessions()}
    assert remaining == {old_waiting.id, recent.id}
    assert not old_done.audio_path.exists()
    assert ("transcriber", "retention.session_deleted", old_done.id) in actions(storage)


def test_night_window_arithmetic():
    assert night_deadline(local(hour=1), "00:30", "06:30") == local(hour=6, minute=30)
    assert night_deadline(local(hour=0, minute=10), "00:30", "06:30") is None
    assert night_deadline(local(hour=23), "22:00", "05:00") == local(day=5, hour=5)
    assert night_deadline(local(hour=3), "22:00", "05:00") == local(hour=5)
    assert night_deadline(local(hour=12), "22:00", "05:00") is None
