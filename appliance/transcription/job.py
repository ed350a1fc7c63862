"""The overnight job: waiting sessions to encrypted drafts, resumable, within the night.

``holdnote transcribe --overnight`` (started by the timer) takes the waiting
sessions oldest first and runs each through the shared pipeline
(:mod:`appliance.transcription.pipeline`), saving an encrypted checkpoint after every window,
so a job that is killed, stopped at the end of the night window, or paused
while the recorder records, resumes where it stopped. It needs the unlocked
practice identity to decrypt audio; on a locked device it leaves the sessions
waiting with a reason the web page shows, and fails nothing. A session that
cannot be transcribed is marked ``failed`` with a reason a person can act on,
and its audio is kept. A recording with damaged chunks is transcribed around
them (the salvage reader reads them as silence of their true length); the
unreadable seconds go to ``sessions.unreadable_s``, the journal (a warning) and
the audit log, and such a session's audio is never deleted automatically.
Retention (audio and whole sessions, :mod:`appliance.transcription.retention`) is
applied here too. ``holdnote transcribe --queued`` (started when "Transcribe now"
is pressed on the page) takes only the sessions asked for, whatever the time of
day. Every automatic action goes to the audit log as actor ``transcriber``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from appliance import age, service
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.drafting import context
from appliance.errors import (
    AudioFormatError,
    CryptoError,
    DeviceLockedError,
    HoldnoteError,
    IllegalTransitionError,
    InvalidStateError,
    ModelNotFoundError,
    NotInitializedError,
    RecorderUnavailableError,
    StorageError,
    TranscriptionError,
)
from appliance.notes import times
from appliance.store import formulations as formulation_table
from appliance.store.db import Session, State, Storage, utcnow
from appliance.store.lifecycle import can_become, sources
from appliance.transcript import TranscriptResult
from appliance.transcription import asr, formulations, retention
from appliance.transcription.checkpoints import Checkpoints, load_voices
from appliance.transcription.drafts import DraftRunner
from appliance.transcription.joblock import single_instance
from appliance.transcription.pipeline import Pipeline, Progress, Settings, release_memory
from appliance.transcription.reader import RecordedFormat, open_audio

log = logging.getLogger(__name__)

ACTOR = "transcriber"
LOCKED_REASON = "Device locked: log in to the web page before the night run; the session waits."
RECORDING_REASON = "Paused while a session is being recorded; continues afterwards."
RECORDER_POLL_S = 30.0


# --- the night window ------------------------------------------------------------------------


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def night_deadline(moment: datetime, start: str, end: str) -> datetime | None:
    """The end of the night window ``moment`` is in, or None when it is outside.

    Times are the device's local time; a window may cross midnight
    ("22:00"-"06:00"); equal start and end mean the whole day.
    """
    local = moment.astimezone()
    begin, finish = _hhmm(start), _hhmm(end)
    today_end = local.replace(hour=finish.hour, minute=finish.minute, second=0, microsecond=0)
    if begin == finish:
        return local + timedelta(days=1)
    now = local.time()
    if begin < finish:
        return today_end if begin <= now < finish else None
    if now >= begin:
        return today_end + timedelta(days=1)
    return today_end if now < finish else None


# --- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What happened to one session: done, failed, or stopped (waiting)."""

    kind: str
    detail: str = ""


class Job:
    """One run of the transcription job (see :func:`appliance.transcription.commands.run_job`)."""

    def __init__(self, cfg, *, now: Callable[[], datetime] = utcnow,
                 stop: threading.Event | None = None,
                 recognizer: asr.Recognizer | Callable[[], asr.Recognizer] | None = None,
                 recorder_status: Callable[[], str | None] | None = None,
                 poll_s: float = RECORDER_POLL_S,
                 storage: Storage | None = None, keys: KeyStore | None = None,
                 language_model=None):
        self.cfg = cfg
        self.now = now
        self.stop = stop or threading.Event()
        # Taken in like the recorder's; built from the configuration when not given.
        self.storage = storage or Storage(cfg.paths.data_dir, now)
        self.keys = keys or KeyStore.for_config(cfg, self.storage)
        self.audit = AuditLog(self.storage)
        self.checkpoints = Checkpoints(self.storage)
        self._recognizer = recognizer
        self._loads_recognizer = recognizer is None  # then it is ours to unload
        self._recorder_status = recorder_status or self._ask_recorder
        self.poll_s = poll_s
        self.deadline: datetime | None = None
        self._told_waiting = False
        # Loaded once per run, on the first note to draft (or the one given: tests, demo).
        self.drafts = DraftRunner(cfg, self.storage, self.audit, recipient=self.keys.recipient,
                                  check_continue=self.check_continue, model=language_model)

    # -- entry

    def run(self, session_id: int | None = None, overnight: bool = False,
            queued: bool = False) -> int:
        """Process the queue (or one session, or those asked for); the process exit code."""
        # The overnight run waits for a "Transcribe now" or Redraft job that holds the lock
        # (the night's queue must not slip a day); any other run gives way at once.
        keep_trying = self._night_not_over if overnight else self._wait_turn if queued else None
        with single_instance(Path(self.cfg.paths.runtime_dir), keep_trying) as mine:
            if not mine:
                log.warning("another transcription job is running; this one does nothing")
                return 0
            if overnight:
                self.sweep_retention()
                self.deadline = night_deadline(self.now(), self.cfg.transcription.night_start,
                                               self.cfg.transcription.night_end)
                if self.deadline is None:
                    return self._outside_window()
            code = self._run_requested() if queued else self._run_queue(session_id)
            if overnight and self.cfg.transcription.lock_after and self.keys.is_unlocked():
                self.keys.lock()
                self.audit.append(ACTOR, "device.lock", detail="after the overnight job")
                log.info("device locked after the overnight job (transcription.lock_after)")
            return code

    def _wait_turn(self) -> bool:
        """Wait a moment for the job holding the lock (a Redraft, say); False once stopped."""
        self._say_waiting()
        return not self.stop.wait(self.poll_s)

    def _say_waiting(self) -> None:
        if not self._told_waiting:
            log.info("another job (Transcribe now, a Redraft or the night run) is running; "
                     "this one starts when it ends")
            self._told_waiting = True

    def _night_not_over(self) -> bool:
        """Wait a moment for the job holding the lock; False once stopped or the night is over."""
        self._say_waiting()
        tc = self.cfg.transcription
        return (not self.stop.wait(self.poll_s)
                and night_deadline(self.now(), tc.night_start, tc.night_end) is not None)

    def _outside_window(self) -> int:
        tc = self.cfg.transcription
        reason = (f"Waiting for the night window ({tc.night_start}-{tc.night_end}); "
                  "or start it now with 'holdnote transcribe'.")
        self._wait_all(self._queue(None), reason)
        log.info("outside the night window %s-%s: nothing done", tc.night_start, tc.night_end)
        return 0

    def waiting(self) -> list[Session]:
        """The sessions the job takes, oldest first: pending ones, and failed ones asked for again."""
        return [s for s in self.storage.list_sessions(states=sources(State.TRANSCRIBING),
                                                      oldest_first=True)
                if s.state != State.FAILED or s.transcribe_requested_at is not None]

    def requested(self) -> list[Session]:
        """The waiting sessions "Transcribe now" was pressed for, oldest first."""
        return [s for s in self.waiting() if s.transcribe_requested_at is not None]

    def _queue(self, session_id: int | None) -> list[Session]:
        if session_id is None:
            return self.waiting()
        session = self.storage.get_session(session_id)
        if not can_become(session.state, State.TRANSCRIBING):
            raise InvalidStateError(
                f"session {session_id} is {session.state}; only recorded, interrupted, "
                "failed or unfinished sessions can be transcribed")
        return [session]

    def _run_requested(self) -> int:
        """``--queued``: the sessions asked for on the page, then the notes waiting to be drafted.

        Sessions asked for while it runs are taken too: the path unit does not start a
        service that is still running. Each session is tried once per run (a locked
        device leaves them asked for, for the night).
        """
        tried: set[int] = set()
        code = 0
        while not self.stop.is_set():
            queue = [s for s in self.requested() if s.id not in tried]
            if not queue:
                break
            log.info("transcribing %d session(s) asked for on the page", len(queue))
            tried.update(s.id for s in queue)
            code = max(code, self._run_queue(None, queue))
        if not tried:
            log.info("no session was asked to be transcribed now")
        return code

    def _run_queue(self, session_id: int | None, queue: list[Session] | None = None) -> int:
        queue = self._queue(session_id) if queue is None else queue
        drafts = session_id is None and bool(self.storage.drafts_waiting()
                                             or formulation_table.waiting(self.storage))
        if not queue and not drafts:
            log.info("no sessions waiting for transcription or drafting")
            return 0
        try:
            identity = self.keys.identity()
        except (DeviceLockedError, NotInitializedError):
            self._wait_all(queue, LOCKED_REASON)
            log.warning("device locked: %d session(s) left waiting", len(queue))
            return 0
        code = self._transcribe_all(queue, identity, session_id) if queue else 0
        if session_id is None and not self.stop.is_set():
            # "Transcribe now" pressed while this job ran: its own job did nothing, so this one
            # takes the session.
            late = [s for s in self.requested() if s.id not in {q.id for q in queue}]
            code = max(code, self._transcribe_all(late, identity, None) if late else 0)
        self.draft_waiting(identity, session_id)
        if session_id is None and not self.stop.is_set():
            # Asked for on the page since the last Redraft run: drafted with the same model.
            formulations.draft_queued(self, identity)
        return code

    def _transcribe_all(self, queue: list[Session], identity, session_id: int | None) -> int:
        try:
            recognizer = self.recognizer()
        except ModelNotFoundError as error:
            self._wait_all(queue, f"Cannot transcribe: {error}")
            log.error("%s", error)
            return 1
        return self._process(queue, identity, recognizer, explicit=session_id is not None)

    def draft_waiting(self, identity, only: int | None = None) -> int:
        """Draft the notes waiting for the model (or one session's); the number drafted.

        Whisper is unloaded first when this job loaded it: the two models need not
        share the memory the unit allows.
        """
        if self._loads_recognizer and self._recognizer is not None and self.storage.drafts_waiting():
            self._recognizer = None
            release_memory()
        try:
            return self.drafts.run(identity, only)
        except asr.Stopped as stopped:
            for session in self.storage.drafts_waiting():
                self.storage.update_session(session.id, drafting_reason=str(stopped))
            log.info("drafting stopped: %s", stopped)
            return 0

    def run_drafts(self, session_id: int | None = None) -> int:
        """``holdnote draft``: the queued notes (or one session's, queued now); the exit code."""
        with single_instance(Path(self.cfg.paths.runtime_dir)) as mine:
            if not mine:
                log.warning("another job is running; it drafts the queued notes after its transcripts")
                return 0
            if session_id is not None:
                self.drafts.queue(session_id)
            try:
                identity = self.keys.identity()
            except (DeviceLockedError, NotInitializedError):
                log.warning("device locked: queued notes wait until it is unlocked")
                return 0
            self.draft_waiting(identity, session_id)
            return 0

    def recognizer(self) -> asr.Recognizer:
        """The recognizer given, or the configured model loaded now."""
        if self._recognizer is None:
            self._recognizer = asr.recognizer_from_config(self.cfg)
        elif callable(self._recognizer) and not isinstance(self._recognizer, asr.Recognizer):
            self._recognizer = self._recognizer()
        return self._recognizer

    def _process(self, queue: list[Session], identity, recognizer, explicit: bool) -> int:
        failed = 0
        for index, session in enumerate(queue):
            try:
                self.check_continue(session.id)
            except asr.Stopped as stopped:
                self._wait_all(queue[index:], str(stopped))
                break
            outcome = self.transcribe_session(session, identity, recognizer)
            failed += outcome.kind == "failed"
            if outcome.kind == "stopped":
                self._wait_all(queue[index + 1:], outcome.detail)
                break
        return 1 if explicit and failed else 0

    def _wait_all(self, sessions: list[Session], reason: str) -> None:
        for session in sessions:
            with contextlib.suppress(StorageError):
                self.storage.update_session(session.id, waiting_reason=reason)

    # -- one session

    def transcribe_session(self, session: Session, identity, recognizer) -> Outcome:
        """Transcribe one session, resuming from its checkpoint; never raises for its data."""
        sid = session.id
        try:
            self.storage.transition(sid, State.TRANSCRIBING, waiting_reason=None)
        except IllegalTransitionError as error:
            log.info("session %s skipped: %s", sid, error)
            return Outcome("skipped", str(error))
        service.status(f"Transcribing session {sid}")
        log.info("session %s: transcribing (%s)", sid, session.state)
        try:
            result = self._run_pipeline(session, identity, recognizer)
        except asr.Stopped as stopped:
            return self._stopped(session, str(stopped))
        except (TranscriptionError, CryptoError, OSError) as error:
            return self._failed(session, _reason(error))
        except Exception as error:  # a bug must not take the other sessions down with it
            log.exception("session %s: unexpected error", sid)
            return self._failed(session, f"internal error ({type(error).__name__}: {error}); "
                                         "see 'journalctl -u holdnote-transcribe'")
        self._store(session, result)
        return Outcome("done")

    def _run_pipeline(self, session: Session, identity, recognizer) -> TranscriptResult:
        if session.audio_path is None or not Path(session.audio_path).exists():
            raise AudioFormatError(
                "the audio file of this session is missing "
                f"({session.audio_path}); it may have been deleted or moved")
        progress = self.checkpoints.load(session.id, identity) or self._fresh(session)
        if progress.offset:
            log.info("session %s: resuming at %.0f s", session.id, progress.seconds)
        voices = load_voices(self.storage, identity) if session.channels == 1 else {}
        pipeline = Pipeline(recognizer, Settings.from_config(self.cfg, voices=voices))
        recipient = self.keys.recipient()
        expected = max(session.duration_s or 0.0, session.recovered_s or 0.0)
        # A recording the recorder was cut off from may end in a torn chunk (not damage).
        cut_off = session.state == State.INTERRUPTED or session.recovered_s is not None
        recorded = RecordedFormat(session.channels, session.sample_rate, finished=not cut_off)
        with open_audio(Path(session.audio_path), [identity], recorded) as reader:
            return pipeline.run(
                reader, progress, bookmarks=session.bookmarks, stop=self.stop,
                session_date=session.started_at.astimezone(),
                on_window=lambda p: self._after_window(session.id, p, recipient, expected))

    @staticmethod
    def _fresh(session: Session) -> Progress:
        progress = Progress()
        if session.state == State.INTERRUPTED and session.error:
            progress.warnings.append(session.error)
        return progress

    def _after_window(self, sid: int, progress: Progress, recipient, expected: float) -> None:
        """Checkpoint, report progress, then decide whether to go on."""
        self.checkpoints.save(sid, progress, recipient)
        done = min(0.99, progress.seconds / expected) if expected > 0 else 0.0
        self.storage.update_session(sid, progress=round(done, 3))
        service.status(f"Transcribing session {sid}: {done:.0%}")
        self.check_continue(sid)

    def check_continue(self, session_id: int) -> None:
        """Raise :class:`asr.Stopped` when the job must stop; wait while recording.

        Transcribing beside a recording would compete with it for the CPU and
        the SD card, so the job waits (the session shows why) until it ends.
        """
        paused = False
        while True:
            if self.stop.is_set():
                raise asr.Stopped("Stopped before finishing; continues at the next run.")
            if self.deadline is not None and self.now() >= self.deadline:
                end = self.cfg.transcription.night_end
                raise asr.Stopped(f"The night window ended at {end}; continues next night.")
            if not self.keys.is_unlocked():
                raise asr.Stopped(LOCKED_REASON)
            if not self._recording():
                break
            if not paused:
                log.info("the recorder is recording: transcription paused")
                service.status("Paused while recording")
                self.storage.update_session(session_id, waiting_reason=RECORDING_REASON)
                paused = True
            self.stop.wait(self.poll_s)
        if paused:
            self.storage.update_session(session_id, waiting_reason=None)
            log.info("recording over: transcription continues")

    def _recording(self) -> bool:
        return self._recorder_status() in ("recording", "stopping")

    def _ask_recorder(self) -> str | None:
        from appliance.recorder import control

        try:
            return control.send(self.cfg.paths.recorder_socket, {"cmd": "status"}).get("state")
        except RecorderUnavailableError:
            return None

    def _stopped(self, session: Session, reason: str) -> Outcome:
        done = self.checkpoints.offset(session.id) or 0.0
        text = f"{reason} ({times.clock(done)} done)" if done else reason
        self.storage.update_session(session.id, waiting_reason=text)
        log.info("session %s: stopped at %.0f s: %s", session.id, done, reason)
        return Outcome("stopped", reason)

    def _failed(self, session: Session, reason: str) -> Outcome:
        self.checkpoints.drop(session.id)
        self.storage.transition(session.id, State.FAILED, error=reason, waiting_reason=None,
                                progress=0.0, transcribe_requested_at=None)
        self.audit.append(ACTOR, "transcribe.failed", session_id=session.id, detail=reason)
        log.error("session %s: transcription failed: %s", session.id, reason)
        return Outcome("failed", reason)

    # -- success

    def _store(self, session: Session, result: TranscriptResult) -> None:
        """Save transcript, note and flags (encrypted), then move the session to draft."""
        sid = session.id
        recipient = self.keys.recipient()
        counts = Counter(flag.category for flag in result.flags)
        flags = [{"category": c, "count": n} for c, n in sorted(counts.items())]
        self.storage.save_transcript(sid, age.encrypt(result.to_bytes(), [recipient]))
        self.storage.save_note(sid, age.encrypt(json.dumps(result.note).encode(), [recipient]),
                               author="holdnote")
        flags_enc = age.encrypt(json.dumps(flags).encode(), [recipient])
        self.storage.transition(
            sid, State.DRAFT, progress=1.0, error=None, waiting_reason=None,
            transcribed_at=self.now(), flags_enc=flags_enc, unreadable_s=result.unreadable_s,
            transcribe_requested_at=None, **self.drafts.state_after_transcript())
        self.checkpoints.drop(sid)
        if self.cfg.drafting.model == "none":
            self._follow_up(sid)
        detail = f"{len(result.segments)} segments, {len(result.flags)} flags"
        self.audit.append(ACTOR, "transcribe.done", session_id=sid, detail=detail)
        log.info("session %s: draft ready (%s)", sid, detail)
        if result.gaps:
            self._report_unreadable(sid, result)
        # Under the other choices the audio stays for now: the sweep (or signing) deletes it.
        if self.cfg.retention.audio == "delete_after_transcription":
            if result.gaps:
                self.audit.append(ACTOR, "retention.audio_kept", session_id=sid,
                                  detail=retention.UNREADABLE_KEPT)
            else:
                self._sweep().delete_audio(sid, "deleted after transcription")

    def _follow_up(self, sid: int) -> None:
        """No model drafts this note: last session's plan is followed up by code alone."""
        try:
            context.refresh(self.storage, sid, self.keys.identity(), self.keys.recipient(),
                            self.cfg.speakers.clinician_name)
        except Exception:  # the transcript is stored; a Redraft makes the section later
            log.exception("session %s: could not follow up the previous plan", sid)

    def _report_unreadable(self, sid: int, result: TranscriptResult) -> None:
        """A damaged recording: a warning in the journal and an entry in the audit log.

        Only times and lengths, never words: the detail is readable without a key.
        """
        places = ", ".join(f"{times.clock(gap.start)} ({gap.duration:.1f} s)" for gap in result.gaps)
        detail = f"{result.unreadable_s:.1f} s unreadable at {places}; audio kept"
        self.audit.append(ACTOR, "transcribe.unreadable", session_id=sid, detail=detail)
        log.warning("session %s: %s of the recording could not be read (damaged chunks skipped "
                    "at %s); the transcript marks them and the audio is kept",
                    sid, f"{result.unreadable_s:.1f} s", places)

    # -- retention

    def _sweep(self) -> retention.Sweep:
        return retention.Sweep(self.cfg, self.storage, self.audit, ACTOR)

    def sweep_retention(self) -> None:
        """Delete audio and sessions that the retention policy no longer keeps."""
        self._sweep().run(self.now())


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, HoldnoteError):
        text = f"cannot read the recording: {error.strerror or error}"
    return text[0].upper() + text[1:]
