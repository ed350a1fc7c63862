"""Transcription entry points: ``transcribe``, ``transcribe-file``, ``draft``, ``enroll-voice``.

Thin on purpose: the overnight job lives in :mod:`appliance.transcription.job`, the
shared pipeline in :mod:`appliance.transcription.pipeline`, recognition in
:mod:`appliance.transcription.asr`, and the encrypted job state in :mod:`appliance.transcription.checkpoints`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from appliance import config as config_mod
from appliance import service
from appliance.access.keys import KeyStore
from appliance.errors import AudioFormatError, ConfigError, DeviceLockedError, DraftingError
from appliance.store import voices as stored_voices
from appliance.store.db import DB_NAME, Storage, iso, utcnow
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from appliance.transcription import asr, checkpoints, drafts, formulations
from appliance.transcription.job import RECORDER_POLL_S, Job
from appliance.transcription.pipeline import Pipeline, Settings
from appliance.transcription.reader import AGE_ARMOR, AGE_MAGIC, RATE, open_audio

log = logging.getLogger(__name__)

_MAX_ENROLL_S = 600


def enroll_voice(cfg, wav_path: Path, name: str = checkpoints.DEFAULT_VOICE) -> None:
    """Store a voice profile of the clinician from a sample, encrypted to the practice key.

    Needs no unlocked device (only the public key); the job decrypts the
    profile with the unlocked identity when it labels mono recordings.
    """
    from appliance.transcription import speakers

    storage = Storage(cfg.paths.data_dir)
    recipient = KeyStore.for_config(cfg, storage).recipient()
    with open_audio(Path(wav_path)) as reader:
        audio = reader.read(_MAX_ENROLL_S * RATE)
    if not len(audio):
        raise AudioFormatError(f"{wav_path}: the sample holds no audio")
    mono = audio.mean(axis=1)
    # Silero VAD, as for sessions: it tells speech from steady noise better than energy.
    spans = asr.speech_regions(mono, cfg.transcription.vad_threshold)
    regions = [(start / RATE, end / RATE) for start, end in spans]
    profile = speakers.enroll(mono, RATE, regions)
    checkpoints.save_voice(storage, recipient, profile, name)
    log.info("voice profile %r stored (%.0f s sample)", name, len(audio) / RATE)


def voice_list(cfg) -> list[str]:
    """The enrolled voice profiles' names (``holdnote voices``)."""
    return voice_names(Storage(cfg.paths.data_dir))


def remove_voice(cfg, name: str) -> None:
    """Forget one voice profile; an unknown name is a :class:`ConfigError` listing the known ones."""
    if not stored_voices.delete(Storage(cfg.paths.data_dir), name):
        known = ", ".join(voice_list(cfg)) or "none"
        raise ConfigError(f"no voice profile named {name!r} (enrolled: {known})")


def transcribe_file(cfg, path: Path, *, speakers: int | str | None = None,
                    stereo_clinician: str | None = None, model: str | None = None,
                    recognizer: asr.Recognizer | None = None,
                    language_model=None) -> TranscriptResult:
    """Transcribe one WAV/FLAC file (or an age file, when unlocked): the result.

    Nothing is stored. Uses the enrolled voices when the device has some and
    is unlocked, and drafts the note when a language model is configured.
    """
    path = Path(path)
    identity, voices = _file_keys(cfg, path)
    with open_audio(path, [identity] if identity else None) as reader:
        recognizer = recognizer or asr.recognizer_from_config(cfg, model)
        settings = Settings.from_config(cfg, speakers_count=speakers,
                                        clinician_channel=stereo_clinician, voices=voices)
        result = Pipeline(recognizer, settings).run(reader)
    return draft_result(cfg, result, language_model, enrolled=list(voices))


def draft_result(cfg, result: TranscriptResult, language_model=None,
                 enrolled: list[str] | None = None) -> TranscriptResult:
    """The result with its note drafted by the configured (or given) model; as is when off.

    A model that cannot be used leaves the facts-and-prompts note, with the reason
    under ``note.drafting`` (and in the journal): the transcript is never lost to it.
    """
    try:
        model = language_model or drafts.load_model(cfg)
    except DraftingError as error:
        log.error("the note is not drafted: %s", error)
        return replace(result, note=dict(result.note, drafting={"state": "failed",
                                                                "reason": str(error)}))
    if model is None:
        return result
    note, totals = drafts.draft_in_memory(cfg, result, model, iso(utcnow()), enrolled or ())
    log.info("note drafted: %d statements dropped by the check", totals.dropped)
    return replace(result, note=note)


def with_llm(cfg, llm: str | None):
    """``cfg`` with ``drafting.model`` replaced (the ``--llm`` option), checked like the file."""
    if not llm:
        return cfg
    data = cfg.model_dump(mode="json")
    data["drafting"]["model"] = llm
    try:
        return config_mod.from_dict(data)
    except ConfigError as error:
        reason = error.problems[0].split(": ", 1)[-1] if error.problems else str(error)
        raise ConfigError(f"--llm {reason}") from None


def run_drafts(cfg, session_id: int | None = None, *, language_model=None) -> int:
    """``holdnote draft``: the queued notes (or one session's, now); the exit code.

    ``--queued`` also drafts the queued case conceptualizations, with the same model.
    """
    stop = threading.Event()
    with _sigterm_sets(stop):
        job = Job(cfg, stop=stop, language_model=language_model)
        code = job.run_drafts(session_id)
        if session_id is None:
            formulations.run_queued(job)
        return code


def _file_keys(cfg, path: Path) -> tuple[object | None, dict[str, np.ndarray]]:
    """(identity, enrolled voices) from this device, where available."""
    if not (Path(cfg.paths.data_dir) / DB_NAME).exists():
        return None, {}
    storage = Storage(cfg.paths.data_dir)
    keys = KeyStore.for_config(cfg, storage)
    try:
        identity = keys.identity()
    except DeviceLockedError:
        if _is_age(path):
            raise
        return None, {}
    return identity, checkpoints.load_voices(storage, identity)


def _is_age(path: Path) -> bool:
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(64)
    except OSError:
        return False
    return head.startswith((AGE_MAGIC, AGE_ARMOR))


@contextlib.contextmanager
def _sigterm_sets(event: threading.Event) -> Iterator[None]:
    """SIGTERM (systemctl stop) asks the job to stop after the current step.

    SIGINT keeps its KeyboardInterrupt, so Ctrl-C in a terminal stops at once.
    """
    restore = service.install_stop_signals(event, (signal.SIGTERM,))
    try:
        yield
    finally:
        restore()


def run_job(cfg, session_id: int | None = None, overnight: bool = False, *,
            queued: bool = False, now: Callable[[], datetime] = utcnow, stop: threading.Event | None = None,
            recognizer=None, recorder_status=None,
            poll_s: float = RECORDER_POLL_S, language_model=None) -> int:
    """``holdnote transcribe``: the waiting sessions (or one), oldest first.

    ``overnight`` applies retention and the night window; ``queued`` takes only the
    sessions "Transcribe now" asked for, at any time. The other keyword-only
    arguments are for tests and the demo (a clock, a stop event, an already
    loaded recognizer or language model, a recorder-status callable).
    """
    stop = stop or threading.Event()
    with _sigterm_sets(stop):
        job = Job(cfg, now=now, stop=stop, recognizer=recognizer,
                  recorder_status=recorder_status, poll_s=poll_s, language_model=language_model)
        return job.run(session_id, overnight, queued=queued)
