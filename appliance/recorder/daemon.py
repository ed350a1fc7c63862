"""The recorder daemon: button -> microphone -> age stream on disk, with guards.

The state machine is ``idle -> recording -> stopping -> idle``, plus ``error``
(the microphone is missing or failed; the daemon keeps probing and returns to
idle when it is back) and ``not_set_up`` (no practice key yet; re-checked on
every start request and every few seconds).

Each recording is a :class:`appliance.recorder.session.Recording`: audio flows from
the source's thread through a bounded queue to a writer thread that streams an
encrypted WAV to disk. All state changes happen on the thread running
:meth:`Recorder.run`; buttons and the control socket only queue requests.

Crash safety lives in :mod:`appliance.recorder.recovery`: :func:`run_daemon` first
closes every session a crash or power cut left ``recording``, and no recording
starts while the database still has one ``recording`` (the recorder closes it
first, or refuses). A recording whose writing fails (the disk filled between two
checks) ends ``interrupted`` with what reached the disk, its reason and an audit
entry; the recorder then shows the fault until there is room again
(:mod:`appliance.recorder.reserve`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from appliance import age, service
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore, room_owner
from appliance.config import Config
from appliance.errors import AudioDeviceError, KeyFormatError, NotInitializedError
from appliance.recorder.buttons import ButtonPanel, StatusLight, make_light
from appliance.recorder.capture import AudioFormat, AudioSource, PyAudioSource
from appliance.recorder.capture import wav_header as wav_header
from appliance.recorder.closing import CLOSE_ERRORS, Closer
from appliance.recorder.control import ControlServer, ensure_not_running
from appliance.recorder.recovery import ACTOR, RescueKeys, hms, recover_sessions
from appliance.recorder.recovery import RECOVERING_SUFFIX as RECOVERING_SUFFIX
from appliance.recorder.recovery import Recovered as Recovered
from appliance.recorder.recovery import complete_stream as complete_stream
from appliance.recorder.recovery import estimate_payload as estimate_payload
from appliance.recorder.recovery import recover_session as recover_session
from appliance.recorder.reserve import DiskReserve
from appliance.recorder.session import Recording
from appliance.store.db import Session, Storage, utcnow

# Names re-exported with "as" above (and wav_header, RescueKeys, recover_sessions)
# lived here before the split; tests and older callers still import them from here.

log = logging.getLogger(__name__)

MB = 1024 * 1024
COMMANDS = ("status", "start", "stop", "mark")
RESCUE_DIR = "rescue"


class RecorderState(StrEnum):
    """What the recorder is doing; the ``state`` of a control-socket reply."""

    IDLE = "idle"
    RECORDING = "recording"
    STOPPING = "stopping"
    ERROR = "error"
    NOT_SET_UP = "not_set_up"


# --- the state machine ------------------------------------------------------------------------


@dataclass
class _Request:
    cmd: str
    origin: str
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict | None = None


class Recorder:
    """The recording state machine and its guards.

    ``source`` is the microphone (or a file standing in for it); ``light`` the
    status LED; ``free_bytes`` the free-space probe of the data disk (tests
    pass a fake disk). Requests arrive through :meth:`handle` (control
    socket), :meth:`request` and :meth:`submit` (buttons); :meth:`run` is the
    loop that serves them, watches the guards and pings the watchdog.
    """

    def __init__(self, cfg: Config, storage: Storage, source: AudioSource, *,
                 keys: KeyStore | None = None, audit: AuditLog | None = None,
                 light: StatusLight | None = None, free_bytes: Callable[[], int] | None = None,
                 probe_interval: float = 3.0, tick: float = 0.2):
        self.cfg = cfg
        self.storage = storage
        self.source = source
        self.keys = keys or KeyStore.for_config(cfg, storage)
        self.audit = audit or AuditLog(storage)
        self.light = light or StatusLight(None)
        self.free_bytes = free_bytes or storage.free_bytes
        self.rescue = RescueKeys(Path(cfg.paths.runtime_dir) / RESCUE_DIR)
        self.reserve = DiskReserve(storage.data_dir)
        self.closer = Closer(storage, self.rescue, self.audit, self.reserve)
        self.probe_interval = probe_interval
        self.tick = tick
        self.recipient: age.X25519Recipient | None = None
        self._inbox: queue.Queue[_Request | None] = queue.Queue()
        self._lock = threading.Lock()
        self._state = RecorderState.IDLE
        self._fault: str | None = None
        self._disk_fault = False  # the fault clears when there is room, not when the mic answers
        self._recording: Recording | None = None
        self._last_session_id: int | None = None
        self._free = self.free_bytes()
        self._next_check = 0.0
        self._status_text: str | None = None
        self._last_ping = 0.0
        self._watchdog = service.watchdog_interval()

    # --- requests (any thread) -------------------------------------------------------------

    @property
    def state(self) -> str:
        """The current state's name."""
        return str(self._state)

    def handle(self, request: dict) -> dict:
        """Answer one control-socket request."""
        cmd = request.get("cmd")
        if cmd not in COMMANDS:
            return self.snapshot(ok=False, error=f"unknown command {cmd!r}; use "
                                 + ", ".join(COMMANDS))
        if cmd == "status":
            return self.snapshot()
        # An optional "origin" ("web", "cli") is kept as the audit entry's source.
        return self.request(cmd, origin=str(request.get("origin") or "control")[:32])

    def request(self, cmd: str, origin: str = "control", timeout: float = 30.0) -> dict:
        """Queue a command for the loop and wait for its reply."""
        item = _Request(cmd, origin)
        self._inbox.put(item)
        if not item.done.wait(timeout) or item.reply is None:  # a reply is set before done
            return self.snapshot(ok=False, error="the recorder is busy; try again")
        return item.reply

    def submit(self, cmd: str, origin: str = "button") -> None:
        """Queue a command without waiting (gpiozero's event thread must not block)."""
        self._inbox.put(_Request(cmd, origin))

    def wake(self) -> None:
        """Make the loop look at the guards now (an audio source ended or failed)."""
        self._inbox.put(None)

    def snapshot(self, ok: bool = True, error: str | None = None, **extra) -> dict:
        """The status reply: see :mod:`appliance.recorder.control`."""
        cfg, fmt = self.cfg.recorder, self.source.format
        with self._lock:
            rec, state = self._recording, self._state
            usable = max(0, self._free - cfg.stop_free_mb * MB)
            reply = {
                "ok": ok,
                "state": str(state),
                "session_id": rec.session.id if rec and rec.session else None,
                "elapsed_s": round(rec.elapsed_s, 2) if rec else 0.0,
                "written_s": round(rec.written_s, 2) if rec else 0.0,
                "free_bytes": self._free,
                "free_hours": round(usable / fmt.bytes_per_second / 3600, 1),
                "error": error if error is not None else self._current_fault(),
                "bookmarks": rec.bookmarks if rec else 0,
                "message": self._message(),
                "disk_low": self._free < cfg.min_free_mb * MB,
                "dropped_frames": rec.frames.frames_dropped if rec else 0,
                "last_session_id": self._last_session_id,
                "max_session_s": self.cfg.recorder.max_session_minutes * 60,
                "device": self.source.description,
                "sample_rate": fmt.sample_rate,
                "channels": fmt.channels,
            }
        reply.update(extra)
        return reply

    def status_text(self) -> str:
        """The one-line status (``systemctl status``, the control reply's ``message``)."""
        with self._lock:
            return self._message()

    # --- state (loop thread; readers take the lock) -----------------------------------------

    def _set_state(self, state: RecorderState, fault: str | None = None,
                   disk: bool = False) -> None:
        with self._lock:
            self._state, self._fault = state, fault
            self._disk_fault = disk and fault is not None

    def _disk_text(self) -> str:
        return (f"disk nearly full: {self._free // MB} MB free, "
                f"{self.cfg.recorder.min_free_mb} MB needed to record")

    def _current_fault(self) -> str | None:
        if self._fault:
            return self._fault
        if self._state == RecorderState.IDLE and self._free < self.cfg.recorder.min_free_mb * MB:
            return self._disk_text()
        return None

    def _message(self) -> str:
        state, rec = self._state, self._recording
        if state == RecorderState.RECORDING and rec is not None:
            return f"Recording {hms(rec.elapsed_s)}"
        if state == RecorderState.STOPPING:
            return "Stopping, saving the recording"
        if state == RecorderState.ERROR:
            return f"Error: {self._fault}"
        if state == RecorderState.NOT_SET_UP:
            return "Waiting for setup: create the first account on the web page"
        if self._free < self.cfg.recorder.min_free_mb * MB:
            return f"Idle, {self._disk_text()}"
        usable = max(0, self._free - self.cfg.recorder.stop_free_mb * MB)
        hours = usable / self.source.format.bytes_per_second / 3600
        return f"Idle, {hours:.0f} h of space" if hours >= 10 else f"Idle, {hours:.1f} h of space"

    def _pattern(self) -> str:
        return {
            RecorderState.NOT_SET_UP: "not_set_up",
            RecorderState.ERROR: "error",
            RecorderState.RECORDING: "recording",
            RecorderState.STOPPING: "recording",
        }.get(self._state) or (
            "disk_low" if self._free < self.cfg.recorder.min_free_mb * MB else "idle")

    # --- the loop -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Decide the state to start in: not set up, microphone missing, or idle."""
        self.reserve.ensure()  # now, so the first press does not wait for it
        self._free = self.free_bytes()
        try:
            self.keys.recipient()
        except (NotInitializedError, KeyFormatError) as error:
            self._set_state(RecorderState.NOT_SET_UP, str(error))
            log.warning("not set up yet: %s", error)
        else:
            self._probe_device()
        self._next_check = time.monotonic() + self.probe_interval
        self._publish()

    def run(self, stop_event: threading.Event) -> None:
        """Serve requests and watch the guards until ``stop_event`` is set."""
        try:
            while not stop_event.is_set():
                try:
                    item = self._inbox.get(timeout=self.tick)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._dispatch(item)
                self._supervise()
                self._publish()
        finally:
            self._shutdown()

    def _dispatch(self, item: _Request) -> None:
        handler = {"start": self._start, "stop": self._stop, "mark": self._mark,
                   "status": lambda origin: self.snapshot()}.get(item.cmd)
        try:
            reply = handler(item.origin) if handler else self.snapshot(
                ok=False, error=f"unknown command {item.cmd!r}")
        except Exception as error:  # the daemon must keep running
            log.exception("%s failed", item.cmd)
            reply = self.snapshot(ok=False, error=f"internal error: {error}")
        self._publish()  # the light and the status line agree with the reply
        item.reply = reply
        item.done.set()

    def _publish(self) -> None:
        text = self.status_text()
        if text != self._status_text:
            self._status_text = text
            service.status(text)
        now = time.monotonic()
        if self._watchdog and now - self._last_ping >= self._watchdog / 2:
            self._last_ping = now
            service.watchdog()
        self.light.show(self._pattern())

    def _shutdown(self) -> None:
        service.stopping()
        if self._recording is not None:
            self._finish("shutdown", note=None)
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.reply = self.snapshot(ok=False, error="the recorder is shutting down")
                item.done.set()
        self.light.show("off")

    # --- commands -----------------------------------------------------------------------------

    def _refuse(self, reason: str) -> dict:
        log.warning("not starting a recording: %s", reason)
        self.light.flash("refused")
        return self.snapshot(ok=False, error=reason)

    def _start_blocker(self) -> str | None:
        """Why a recording cannot start now, or ``None``. Re-checks setup and device."""
        try:
            self.recipient = self.keys.recipient()
        except (NotInitializedError, KeyFormatError) as error:
            self._set_state(RecorderState.NOT_SET_UP, str(error))
            return str(error)
        if self._state == RecorderState.NOT_SET_UP:
            self._set_state(RecorderState.IDLE)
        self._free = self.free_bytes()
        if self._free < self.cfg.recorder.min_free_mb * MB:
            return (f"not enough free space to record: {self._free // MB} MB free, "
                    f"{self.cfg.recorder.min_free_mb} MB needed (recorder.min_free_mb); "
                    "delete old sessions or their audio")
        if not self._probe_device():
            return self._fault
        self.reserve.ensure()
        return self._close_open_sessions()

    def _close_open_sessions(self) -> str | None:
        """Close sessions still marked recording before another starts; why not, or ``None``."""
        reason = self.closer.close_open(self.recipient)
        if reason:
            self._set_state(RecorderState.ERROR, reason, disk=True)
        return reason

    def _start(self, origin: str) -> dict:
        if self._state in (RecorderState.RECORDING, RecorderState.STOPPING):
            return self.snapshot(ok=False, error="already recording")
        reason = self._start_blocker()
        if reason:
            return self._refuse(reason)
        if self.recipient is None:  # _start_blocker loaded it
            return self._refuse("the practice key is not loaded")
        recording = Recording(self.storage, self.recipient, self.source,
                              queue_seconds=self.cfg.audio.queue_seconds,
                              max_seconds=self.cfg.recorder.max_session_minutes * 60,
                              rescue=self.rescue, wake=self.wake, reserve=self.reserve,
                              owner_id=room_owner(self.storage, self.cfg.recorder.clinician))
        try:
            session = recording.start()
        except AudioDeviceError as error:
            self._set_state(RecorderState.ERROR, str(error))
            return self._refuse(str(error))
        except CLOSE_ERRORS as error:  # the storage refuses a second session, a full disk
            return self._refuse(f"could not start recording: {error}")
        with self._lock:
            self._recording, self._state, self._fault = recording, RecorderState.RECORDING, None
        self.audit.append(ACTOR, "recording.start", session_id=session.id, source=origin)
        log.info("session %s: recording started (%s, from %s)", session.id,
                 self.source.description, origin)
        return self.snapshot()

    def _stop(self, origin: str) -> dict:
        if self._recording is None:
            return self.snapshot(ok=False, error="not recording")
        session = self._finish(origin, note=None)
        if session is None:
            return self.snapshot(ok=False, error="the recording could not be closed; see the log")
        return self.snapshot(session_id=session.id, duration_s=session.duration_s)

    def _mark(self, origin: str) -> dict:
        rec = self._recording
        if rec is None or self._state != RecorderState.RECORDING:
            return self.snapshot(ok=False, error="not recording: bookmarks mark a moment "
                                 "in a running recording")
        offset = rec.mark()
        self.light.flash("bookmark")
        self.audit.append(ACTOR, "recording.mark", session_id=rec.session_id, source=origin,
                          detail=f"{offset:.1f} s")
        log.info("session %s: bookmark at %s", rec.session_id, hms(offset))
        return self.snapshot(bookmark_s=round(offset, 2))

    def _finish(self, origin: str, note: str | None, fault: str | None = None,
                end_reason: str | None = None) -> Session | None:
        """Stop the running recording; the state becomes idle, or error with ``fault``.

        If writing failed (now or earlier) the session ends with what reached
        the disk and the state becomes error until there is room again.
        """
        rec = self._recording
        if rec is None:
            return None
        self._set_state(RecorderState.STOPPING)
        self._publish()
        session = None
        try:
            session = rec.stop(note, self.audit, end_reason)
        except Exception as error:  # noqa: BLE001 - the daemon keeps running; closing is retried
            fault = self.closer.not_closed(rec.session_id, rec.write_failure, error)
        if session is not None:
            if rec.write_failure:
                fault = self.closer.write_fault(session, rec.write_failure)
            # Before the state changes: whoever sees "idle" finds the audit entry there.
            self.closer.audit_stop(session, origin)
            log.info("session %s: %s, %s, %d bookmark(s), %d frame(s) dropped", session.id,
                     session.state, hms(session.duration_s), rec.bookmarks,
                     rec.frames.frames_dropped)
        disk = rec.write_failure is not None or rec.session_id in self.closer.unclosed
        with self._lock:
            self._recording, self._last_session_id = None, rec.session_id
            self._state = RecorderState.ERROR if fault else RecorderState.IDLE
            self._fault, self._disk_fault = fault, disk and fault is not None
        self._next_check = time.monotonic() + self.probe_interval
        self._publish()
        return session

    # --- guards -------------------------------------------------------------------------------

    def _probe_device(self) -> bool:
        try:
            self.source.probe()
        except AudioDeviceError as error:
            if self._state != RecorderState.ERROR:
                log.error("microphone problem: %s", error)
            self._set_state(RecorderState.ERROR, str(error))
            return False
        if self._state == RecorderState.ERROR:
            log.info("microphone is back: %s", self.source.description)
            self._set_state(RecorderState.IDLE)
        return True

    def _supervise(self) -> None:
        self._free = self.free_bytes()
        if self._recording is not None:
            self._guard_recording(self._recording)
        elif time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.probe_interval
            if self._state == RecorderState.NOT_SET_UP:
                with contextlib.suppress(NotInitializedError, KeyFormatError):
                    self.keys.recipient()
                    self._set_state(RecorderState.IDLE)
                    log.info("practice key found: ready to record")
                    self._probe_device()
            elif self._state == RecorderState.ERROR and self._disk_fault:
                self._await_disk_space()
            elif self._state == RecorderState.ERROR:
                self._probe_device()

    def _await_disk_space(self) -> None:
        """After a write failure: close what is still open, then wait for room to record."""
        if self.closer.unclosed:
            if self._close_open_sessions() is not None:
                return  # still cannot: tried again at the next check
            self._set_state(RecorderState.ERROR, "the session left open is closed now; free "
                            "space on the data disk to record again", disk=True)
        if self._free >= self.cfg.recorder.min_free_mb * MB:
            log.info("the data disk has room again: ready to record")
            self._set_state(RecorderState.IDLE)
            self._probe_device()

    def _guard_recording(self, rec: Recording) -> None:
        problem = rec.problem()
        elapsed = hms(rec.elapsed_s)
        kind, text = problem or (None, None)
        if kind == "ended":
            self._finish("source", note=None, end_reason="the audio source ended")
        elif kind == "limit":
            log.warning("session %s reached the maximum length", rec.session_id)
            self._finish("guard", note=f"Stopped at the maximum session length "
                         f"({self.cfg.recorder.max_session_minutes} min, "
                         "recorder.max_session_minutes).",
                         end_reason="the maximum session length was reached")
        elif kind == "disk":
            self._finish("guard", note=None)  # the recording knows why: rec.write_failure
        elif kind is not None:
            log.error("session %s: %s", rec.session_id, text)
            self._finish("guard", note=f"Microphone lost after {elapsed}: {text}. The recording "
                         "up to that point is kept.", fault=text,
                         end_reason="the microphone was lost")
        elif self._free < self.cfg.recorder.stop_free_mb * MB:
            log.error("session %s: stopping, the disk is nearly full", rec.session_id)
            self._finish("guard", note=f"Stopped early after {elapsed}: free space fell below "
                         f"{self.cfg.recorder.stop_free_mb} MB (recorder.stop_free_mb).",
                         end_reason="the data disk was nearly full")


# --- the daemon -------------------------------------------------------------------------------


def _attach_gpio(cfg: Config, pin_factory, recorder: Recorder) -> ButtonPanel | None:
    """Buttons and light on the GPIO pins; without GPIO, log and carry on without them."""
    from gpiozero.exc import GPIOZeroError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            light = make_light(cfg.gpio, pin_factory)
            try:
                buttons = ButtonPanel(cfg.gpio, lambda: recorder.state,
                                      lambda cmd: recorder.submit(cmd, "button"),
                                      pin_factory=pin_factory)
            except BaseException:
                light.close()
                raise
        for item in caught:
            log.debug("gpiozero: %s", item.message)
    except (GPIOZeroError, ImportError, OSError, RuntimeError) as error:
        log.warning("no GPIO available (%s): running without the buttons and the light; "
                    "use 'holdnote record start|stop|mark' or the web page", error)
        return None
    recorder.light = light
    return buttons


def _recovery_progress() -> None:
    service.watchdog()
    service.extend_timeout(60)


def run_daemon(cfg: Config, *, pin_factory=None, source: AudioSource | None = None,
               stop_event: threading.Event | None = None, now=None) -> int:
    """``holdnote recorder``: recover, then serve buttons and the control socket until stopped.

    ``pin_factory`` is a gpiozero factory (default: gpiozero's own choice; with
    no GPIO the daemon runs without buttons and light), ``source`` the audio
    source (default: PyAudio on ``audio.device``), ``stop_event`` ends the
    daemon like SIGTERM does, ``now`` is the storage clock.
    """
    stop_event = stop_event or threading.Event()
    storage = Storage(cfg.paths.data_dir, now=now or utcnow)
    keys = KeyStore.for_config(cfg, storage)
    audit = AuditLog(storage)
    if source is None:
        source = PyAudioSource(cfg.audio.device, AudioFormat(
            cfg.audio.sample_rate, cfg.audio.channels, cfg.audio.frames_per_buffer))
    ensure_not_running(cfg.paths.recorder_socket)
    recorder = Recorder(cfg, storage, source, keys=keys, audit=audit)
    recover_sessions(storage, keys, recorder.rescue, audit, progress=_recovery_progress)
    server = ControlServer(cfg.paths.recorder_socket, recorder.handle)
    restore_signals = service.install_stop_signals(stop_event)
    buttons = None
    try:
        # Buttons before the socket: whoever sees the socket answer may press at once.
        buttons = _attach_gpio(cfg, pin_factory, recorder)
        recorder.prepare()
        server.start()
        service.ready(recorder.status_text())
        log.info("recorder ready: %s", recorder.status_text())
        recorder.run(stop_event)
    finally:
        restore_signals()
        server.close()
        if buttons is not None:
            buttons.close()
        recorder.light.close()
        if hasattr(source, "close"):
            source.close()
    log.info("recorder stopped")
    return 0
