"""The recorder daemon: button -> microphone -> age stream on disk, with guards.

The state machine is ``idle -> recording -> stopping -> idle``, plus ``error``
(the microphone is missing or failed; the daemon keeps probing and returns to
idle when it is back) and ``not_set_up`` (no practice key yet; re-checked on
every start request and every few seconds).

Audio flows from the source's thread through a bounded :class:`FrameQueue`
to a writer thread that streams a WAV ("unknown length" header, then PCM)
into an :class:`appliance.age.StreamWriter` encrypting to the practice public
key, fsyncing each completed 64 KiB chunk. Nothing unencrypted reaches the
disk. All state changes happen on the thread running :meth:`Recorder.run`;
buttons and the control socket only queue requests.

Crash safety: each recording is also encrypted to a throw-away key kept in
the RAM-only runtime directory (see :class:`RescueKeys`), so that start-up
can re-write a stream cut off by a crash into a complete one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path

from appliance import age, service
from appliance.audio import (
    WAV_HEADER_BYTES,
    AudioFormat,
    AudioSource,
    FrameQueue,
    PyAudioSource,
    StreamPump,
    wav_header,
)
from appliance.audit import AuditLog
from appliance.buttons import ButtonPanel, StatusLight, make_light
from appliance.config import Config
from appliance.control import ControlServer, ensure_not_running
from appliance.errors import (
    AudioDeviceError,
    CryptoError,
    HoldnoteError,
    KeyFormatError,
    NotInitializedError,
    SessionNotFoundError,
)
from appliance.keys import KeyStore
from appliance.storage import Session, State, Storage, atomic_write, fsync_dir, utcnow

log = logging.getLogger(__name__)

MB = 1024 * 1024
ACTOR = "recorder"
COMMANDS = ("status", "start", "stop", "mark")
RESCUE_DIR = "rescue"
RECOVERING_SUFFIX = ".recovering"


class RecorderState(StrEnum):
    """What the recorder is doing; the ``state`` of a control-socket reply."""

    IDLE = "idle"
    RECORDING = "recording"
    STOPPING = "stopping"
    ERROR = "error"
    NOT_SET_UP = "not_set_up"


def hms(seconds: float) -> str:
    """``754.2`` -> ``"00:12:34"``."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


# --- rescue keys -----------------------------------------------------------------------


class RescueKeys:
    """Throw-away keys that let a recording cut off by a crash be completed.

    The recorder holds only the practice *public* key, so it cannot read back
    what it wrote, and a stream that lost its final chunk can only be
    re-written by someone who can decrypt it. Each recording is therefore also
    encrypted to a fresh key whose secret half lives only in the RAM-only
    runtime directory, and only while the session is open. After a crash (the
    daemon killed, the watchdog firing) start-up uses it to re-write the
    stream complete, to the practice key alone, and deletes it. After a power
    cut it is gone with the rest of RAM; the stream then stays as it is, every
    completed chunk readable with the practice key by the salvage reader.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, session_id: int) -> Path:
        return self.directory / f"{session_id:06d}.key"

    def create(self, session_id: int) -> age.X25519Recipient | None:
        """A new key for ``session_id``; ``None`` (and a warning) if it cannot be kept."""
        identity = age.X25519Identity.generate()
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(self._path(session_id), str(identity).encode("ascii"), mode=0o600)
        except OSError as error:
            log.warning("cannot keep a rescue key in %s (%s); after a crash this "
                        "recording is left for the overnight job to salvage",
                        self.directory, error.strerror)
            return None
        return identity.to_recipient()

    def load(self, session_id: int) -> age.X25519Identity | None:
        """The key of ``session_id`` if it survived."""
        try:
            return age.X25519Identity.from_str(self._path(session_id).read_text("ascii").strip())
        except (OSError, KeyFormatError, UnicodeDecodeError):
            return None

    def discard(self, session_id: int) -> None:
        """Destroy the key (the session is closed)."""
        with contextlib.suppress(FileNotFoundError):
            self._path(session_id).unlink()

    def session_ids(self) -> list[int]:
        """Sessions that still have a key."""
        if not self.directory.is_dir():
            return []
        return sorted(int(p.stem) for p in self.directory.glob("*.key") if p.stem.isdigit())


# --- recovery ------------------------------------------------------------------------------


class _Progress:
    """A pass-through writer that reports progress every few MB (watchdog pings)."""

    def __init__(self, out, progress: Callable[[], None] | None, every: int = 8 * MB):
        self.out, self.progress, self.every, self._since = out, progress, every, 0

    def write(self, data) -> int:
        written = self.out.write(data)
        self._since += len(data)
        if self.progress and self._since >= self.every:
            self._since = 0
            self.progress()
        return written

    def flush(self) -> None:
        self.out.flush()


def complete_stream(path: Path, identity: age.X25519Identity, recipient: age.X25519Recipient,
                    progress: Callable[[], None] | None = None) -> int:
    """Re-write a truncated recording as a complete stream to ``recipient``.

    Plaintext only passes through memory: the salvage reader's output is
    encrypted again as it is read. The new file replaces the old one
    atomically. Returns the plaintext bytes recovered.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=RECOVERING_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            writer = age.StreamWriter(out, [recipient])
            result = age.salvage(path, _Progress(writer, progress), [identity])
            writer.close()  # the final chunk, then fsync
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return result.bytes_recovered


def estimate_payload(path: Path | None) -> int:
    """Plaintext bytes in the complete chunks of an age file, judged by its size alone.

    Used when a stream cannot be decrypted now (power cut: no rescue key):
    chunks have a fixed size, so counting them needs no key. An estimate:
    the overnight job's salvage reader authenticates each one.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except (OSError, AttributeError):
        return 0
    mac_line = head.find(b"\n--- ")
    end = head.find(b"\n", mac_line + 1) if mac_line >= 0 else -1
    if end < 0:
        return 0
    payload_start = end + 1 + 16  # header, then the 16-byte payload nonce
    return max(0, size - payload_start) // (age.CHUNK_SIZE + 16) * age.CHUNK_SIZE


def _mtime(path: Path | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Recovered:
    """The outcome of recovering one session."""

    session_id: int
    recovered_s: float
    completed: bool  # True: the file is now a complete age stream


def _interruption_text(seconds: float, completed: bool, reason: str | None) -> str:
    cause = reason or "the recorder stopped unexpectedly (crash or power loss)"
    if seconds <= 0:
        return f"Recording interrupted: {cause}; no audio had reached the disk."
    if completed:
        return f"Recording interrupted: {cause}; {hms(seconds)} recovered."
    return (f"Recording interrupted: {cause}; about {hms(seconds)} can be recovered "
            "(the overnight job salvages it).")


def recover_session(storage: Storage, session: Session, recipient: age.X25519Recipient | None,
                    rescue: RescueKeys, audit: AuditLog, *, reason: str | None = None,
                    progress: Callable[[], None] | None = None) -> Recovered:
    """Close a session that was cut off: complete its stream if possible, mark it interrupted."""
    fmt = AudioFormat(session.sample_rate, session.channels)
    path = session.audio_path
    identity = rescue.load(session.id)
    payload, completed = None, False
    if identity is not None and recipient is not None and path is not None and path.exists():
        try:
            payload, completed = complete_stream(path, identity, recipient, progress), True
        except (CryptoError, OSError) as error:
            log.warning("session %s: cannot complete the stream now (%s); kept as it is",
                        session.id, error)
    if payload is None:
        payload = estimate_payload(path)
    seconds = round(max(0, payload - WAV_HEADER_BYTES) / fmt.bytes_per_second, 2)
    storage.transition(
        session.id, State.INTERRUPTED, (State.RECORDING, State.INTERRUPTED),
        ended_at=_mtime(path) or storage.now(), duration_s=seconds, recovered_s=seconds,
        error=_interruption_text(seconds, completed, reason),
    )
    if completed:
        rescue.discard(session.id)
    audit.append(ACTOR, "recording.recovered", session_id=session.id,
                 detail=f"{seconds:.1f} s" + ("" if completed else ", left for salvage"))
    log.warning("session %s interrupted: %.1f s %s", session.id, seconds,
                "recovered" if completed else "recoverable by the overnight job")
    return Recovered(session.id, seconds, completed)


def _sessions_to_recover(storage: Storage, rescue: RescueKeys) -> list[Session]:
    todo = {s.id: s for s in storage.list_sessions(states=(State.RECORDING,))}
    for session_id in rescue.session_ids():
        if session_id in todo:
            continue
        try:
            session = storage.get_session(session_id)
        except SessionNotFoundError:
            session = None
        if session is not None and session.state == State.INTERRUPTED:
            todo[session_id] = session  # an earlier completion failed: try again
        else:
            rescue.discard(session_id)
    return [todo[k] for k in sorted(todo)]


def recover_sessions(storage: Storage, keys: KeyStore, rescue: RescueKeys, audit: AuditLog,
                     progress: Callable[[], None] | None = None) -> list[Recovered]:
    """At start-up: close every session a crash or power cut left ``recording``."""
    try:
        recipient = keys.recipient()
    except NotInitializedError:
        recipient = None
    results = [recover_session(storage, s, recipient, rescue, audit, progress=progress)
               for s in _sessions_to_recover(storage, rescue)]
    for stale in storage.recordings_dir.glob(f".*{RECOVERING_SUFFIX}"):
        stale.unlink(missing_ok=True)  # a re-write that was itself cut off
    return results


# --- one recording ---------------------------------------------------------------------------


class Recording:
    """One session being recorded: capture -> queue -> writer thread -> age file."""

    def __init__(self, storage: Storage, recipient: age.X25519Recipient, source: AudioSource,
                 *, queue_seconds: float, max_seconds: float, rescue: RescueKeys,
                 wake: Callable[[], None]):
        self.storage = storage
        self.recipient = recipient
        self.source = source
        self.format = source.format
        self.rescue = rescue
        self.wake = wake
        self.frames = FrameQueue(source.format, queue_seconds, wake,
                                 max_frames=int(max_seconds * source.format.sample_rate))
        self.session: Session | None = None
        self.bookmarks = 0
        self.capture = None
        self.pump: StreamPump | None = None
        self._file = None
        self._stream: age.StreamWriter | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds of audio captured (the timeline, dropped frames included)."""
        return self.frames.elapsed_s

    @property
    def written_s(self) -> float:
        """Seconds of audio handed to the encrypted stream (behind ``elapsed_s`` by the queue)."""
        return self.pump.frames_written / self.format.sample_rate if self.pump else 0.0

    def start(self) -> Session:
        """Open the microphone, then the session and its encrypted file."""
        # The microphone first, so the first words after the press are in the
        # queue while the session row and the file are being created.
        self.capture = self.source.open(self.frames)
        try:
            self.session = self.storage.create_session(self.format.channels,
                                                       self.format.sample_rate)
            self._open_stream(self.session)
        except BaseException:
            self._abandon()
            raise
        self.pump = StreamPump(self.frames, self._stream, self.wake)
        self.pump.start()
        return self.session

    def _open_stream(self, session: Session) -> None:
        recipients = [self.recipient]
        rescue = self.rescue.create(session.id)
        if rescue is not None:
            recipients.append(rescue)
        fd = os.open(session.audio_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                     0o600)
        self._file = open(fd, "wb", buffering=0)
        fsync_dir(session.audio_path.parent)  # the name survives a power cut too
        self._stream = age.StreamWriter(self._file, recipients, fsync_each_chunk=True)
        self._stream.write(wav_header(self.format))

    def _abandon(self) -> None:
        """Undo a start that failed half-way: nothing was recorded, nothing is kept."""
        self.capture.close()
        if self._file is not None:
            self._file.close()
        if self.session is not None:
            self.rescue.discard(self.session.id)
            with contextlib.suppress(HoldnoteError, OSError):
                self.storage.delete_session(self.session.id)

    def problem(self) -> tuple[str, str] | None:
        """``(kind, text)`` when the recording cannot go on: disk, device, limit or ended."""
        if self.pump is not None and self.pump.error is not None:
            return "disk", f"writing the recording failed: {self.pump.error}"
        failure = self.frames.failure or self.capture.failure
        if failure:
            return "device", failure
        if self.frames.full:
            return "limit", "the maximum session length was reached"
        if self.frames.ended:
            return "ended", "the audio source ended"
        return None

    def mark(self) -> float:
        """Bookmark the current moment; returns its offset in seconds."""
        offset = self.elapsed_s
        self.bookmarks = len(self.storage.add_bookmark(self.session.id, offset).bookmarks)
        return offset

    def stop(self, note: str | None, audit: AuditLog) -> Session:
        """Finish the stream (final chunk, fsync) and mark the session recorded.

        If writing had failed, the stream is completed from the rescue key
        where possible and the session is marked interrupted instead.
        """
        self.capture.close()
        self.frames.close()
        self.pump.join(timeout=60)
        fmt = self.format
        if self.pump.error is not None or self.pump.is_alive():
            return self._stop_broken(audit)
        self._stream.close()
        self._file.close()
        duration = self.pump.frames_written / fmt.sample_rate
        session = self.storage.transition(
            self.session.id, State.RECORDED, (State.RECORDING,),
            ended_at=self.storage.now(), duration_s=round(duration, 2), error=note,
        )
        self.rescue.discard(self.session.id)
        return session

    def _stop_broken(self, audit: AuditLog) -> Session:
        with contextlib.suppress(Exception):
            self._stream.abort()
        with contextlib.suppress(OSError):
            self._file.close()
        recover_session(self.storage, self.storage.get_session(self.session.id), self.recipient,
                        self.rescue, audit, reason=f"writing failed ({self.pump.error})")
        return self.storage.get_session(self.session.id)


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
        self.keys = keys or KeyStore(storage, cfg.paths.runtime_dir)
        self.audit = audit or AuditLog(storage)
        self.light = light or StatusLight(None)
        self.free_bytes = free_bytes or storage.free_bytes
        self.rescue = RescueKeys(Path(cfg.paths.runtime_dir) / RESCUE_DIR)
        self.probe_interval = probe_interval
        self.tick = tick
        self.recipient: age.X25519Recipient | None = None
        self._inbox: queue.Queue[_Request | None] = queue.Queue()
        self._lock = threading.Lock()
        self._state = RecorderState.IDLE
        self._fault: str | None = None
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
        if not item.done.wait(timeout):
            return self.snapshot(ok=False, error="the recorder is busy; try again")
        return item.reply

    def submit(self, cmd: str, origin: str = "button") -> None:
        """Queue a command without waiting (gpiozero's event thread must not block)."""
        self._inbox.put(_Request(cmd, origin))

    def wake(self) -> None:
        """Make the loop look at the guards now (an audio source ended or failed)."""
        self._inbox.put(None)

    def snapshot(self, ok: bool = True, error: str | None = None, **extra) -> dict:
        """The status reply: see :mod:`appliance.control`."""
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

    def _set_state(self, state: RecorderState, fault: str | None = None) -> None:
        with self._lock:
            self._state, self._fault = state, fault

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
        except Exception as error:  # noqa: BLE001 - the daemon must keep running
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
        return None

    def _start(self, origin: str) -> dict:
        if self._state in (RecorderState.RECORDING, RecorderState.STOPPING):
            return self.snapshot(ok=False, error="already recording")
        reason = self._start_blocker()
        if reason:
            return self._refuse(reason)
        recording = Recording(self.storage, self.recipient, self.source,
                              queue_seconds=self.cfg.audio.queue_seconds,
                              max_seconds=self.cfg.recorder.max_session_minutes * 60,
                              rescue=self.rescue, wake=self.wake)
        try:
            session = recording.start()
        except AudioDeviceError as error:
            self._set_state(RecorderState.ERROR, str(error))
            return self._refuse(str(error))
        except (HoldnoteError, OSError) as error:
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
        self.audit.append(ACTOR, "recording.mark", session_id=rec.session.id, source=origin,
                          detail=f"{offset:.1f} s")
        log.info("session %s: bookmark at %s", rec.session.id, hms(offset))
        return self.snapshot(bookmark_s=round(offset, 2))

    def _finish(self, origin: str, note: str | None, fault: str | None = None) -> Session | None:
        """Stop the running recording; the state becomes idle, or error with ``fault``."""
        rec = self._recording
        self._set_state(RecorderState.STOPPING)
        self._publish()
        session = None
        try:
            session = rec.stop(note, self.audit)
        except Exception:  # noqa: BLE001 - start-up recovery will close the session
            log.exception("session %s could not be closed; it will be recovered at the "
                          "next start", rec.session.id)
        with self._lock:
            self._recording, self._last_session_id = None, rec.session.id
            self._state = RecorderState.ERROR if fault else RecorderState.IDLE
            self._fault = fault
        self._next_check = time.monotonic() + self.probe_interval
        self._publish()
        if session is not None:
            self.audit.append(ACTOR, "recording.stop", session_id=session.id, source=origin)
            log.info("session %s: %s, %s, %d bookmark(s), %d frame(s) dropped", session.id,
                     session.state, hms(session.duration_s), rec.bookmarks,
                     rec.frames.frames_dropped)
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
            elif self._state == RecorderState.ERROR:
                self._probe_device()

    def _guard_recording(self, rec: Recording) -> None:
        problem = rec.problem()
        elapsed = hms(rec.elapsed_s)
        kind, text = problem or (None, None)
        if kind == "ended":
            self._finish("source", note=None)
        elif kind == "limit":
            log.warning("session %s reached the maximum length", rec.session.id)
            self._finish("guard", note=f"Stopped at the maximum session length "
                         f"({self.cfg.recorder.max_session_minutes} min, "
                         "recorder.max_session_minutes).")
        elif kind is not None:
            log.error("session %s: %s", rec.session.id, text)
            what = "Microphone lost" if kind == "device" else "Writing failed"
            self._finish("guard", note=f"{what} after {elapsed}: {text}. The recording up to "
                         "that point is kept.", fault=text)
        elif self._free < self.cfg.recorder.stop_free_mb * MB:
            log.error("session %s: stopping, the disk is nearly full", rec.session.id)
            self._finish("guard", note=f"Stopped early after {elapsed}: free space fell below "
                         f"{self.cfg.recorder.stop_free_mb} MB (recorder.stop_free_mb).")


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


def _install_signals(stop_event: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT end the loop (which finishes a running recording cleanly)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum, frame) -> None:
        # Only set the event: the loop notices within one tick. Touching the
        # request queue here could deadlock on a lock the loop holds.
        stop_event.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]


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
    keys = KeyStore(storage, cfg.paths.runtime_dir, cfg.security.scrypt_work_factor)
    audit = AuditLog(storage)
    if source is None:
        source = PyAudioSource(cfg.audio.device, AudioFormat(
            cfg.audio.sample_rate, cfg.audio.channels, cfg.audio.frames_per_buffer))
    ensure_not_running(cfg.paths.recorder_socket)
    recorder = Recorder(cfg, storage, source, keys=keys, audit=audit)
    recover_sessions(storage, keys, recorder.rescue, audit, progress=_recovery_progress)
    server = ControlServer(cfg.paths.recorder_socket, recorder.handle)
    restore_signals = _install_signals(stop_event)
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
