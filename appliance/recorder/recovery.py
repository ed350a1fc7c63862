"""Crash safety for recordings: rescue keys, and closing sessions a crash cut off.

The recorder holds only the practice *public* key, so a stream it was writing
when the process died cannot be finished by reading it back. Each recording is
therefore also encrypted to a throw-away :class:`RescueKeys` key kept in the
RAM-only runtime directory. At start-up :func:`recover_sessions` closes every
session still marked ``recording``:

- after a crash (the daemon killed, the watchdog firing) the rescue key is
  still there, so the stream is re-written complete to the practice key alone
  (:func:`complete_stream`) and the key is destroyed;
- after a power cut the key went with the rest of RAM; the stream stays as it
  is and the session says how much the overnight job's salvage reader can get
  back (:func:`estimate_payload`).

Either way the session ends ``interrupted`` with a note a person can read.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.errors import CryptoError, KeyFormatError, NotInitializedError, SessionNotFoundError
from appliance.fsutil import atomic_output, atomic_write
from appliance.recorder.capture import WAV_HEADER_BYTES, AudioFormat
from appliance.store.db import Session, State, Storage

log = logging.getLogger(__name__)

ACTOR = "recorder"  # the audit log's actor for everything the recorder daemon does
RECOVERING_SUFFIX = ".recovering"
PROGRESS_EVERY = 8 * 1024 * 1024  # bytes re-written between watchdog pings
CRASH_REASON = "the recorder stopped unexpectedly (crash or power loss)"
LEFT_OPEN_REASON = "it was still marked as recording when the next recording was asked for"


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

    def __init__(self, out, progress: Callable[[], None] | None, every: int = PROGRESS_EVERY):
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
    with atomic_output(path, suffix=RECOVERING_SUFFIX) as out:
        writer = age.StreamWriter(out, [recipient])
        result = age.salvage(path, _Progress(writer, progress), [identity])
        writer.close()  # the final chunk, then fsync
    return result.bytes_recovered


def estimate_payload(path: Path | None) -> int:
    """Plaintext bytes in the complete chunks of an age file, judged by its size alone.

    Used when a stream cannot be decrypted now (power cut: no rescue key):
    chunks have a fixed size, so counting them needs no key. An estimate:
    the overnight job's salvage reader authenticates each one.
    """
    if path is None:
        return 0
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return 0
    mac_line = head.find(b"\n--- ")
    end = head.find(b"\n", mac_line + 1) if mac_line >= 0 else -1
    if end < 0:
        return 0
    payload_start = end + 1 + 16  # header, then the 16-byte payload nonce
    return max(0, size - payload_start) // (age.CHUNK_SIZE + 16) * age.CHUNK_SIZE


def _mtime(path: Path | None) -> datetime | None:
    if path is None:
        return None
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


@dataclass(frozen=True)
class Recovered:
    """The outcome of recovering one session."""

    session_id: int
    recovered_s: float
    completed: bool  # True: the file is now a complete age stream


def _interruption_text(seconds: float, completed: bool, cause: str) -> str:
    if seconds <= 0:
        return f"Recording interrupted: {cause}; no audio had reached the disk."
    if completed:
        return f"Recording interrupted: {cause}; {hms(seconds)} recovered."
    return (f"Recording interrupted: {cause}; about {hms(seconds)} can be recovered "
            "(the overnight job salvages it).")


def recover_session(storage: Storage, session: Session, recipient: age.X25519Recipient | None,
                    rescue: RescueKeys, audit: AuditLog, *, reason: str | None = None,
                    progress: Callable[[], None] | None = None,
                    complete: bool = True) -> Recovered:
    """Close a session that was cut off: complete its stream if possible, mark it interrupted.

    ``reason`` becomes the session's ``end_reason`` (default: the one it already
    has, else a crash). ``complete=False`` leaves the stream as it is for the
    salvage reader and keeps the rescue key for a later attempt: used when the
    disk is full, where a re-written copy would take the last free blocks.
    """
    fmt = AudioFormat(session.sample_rate, session.channels)
    path = session.audio_path
    cause = reason or session.end_reason or CRASH_REASON
    identity = rescue.load(session.id) if complete else None
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
        session.id, State.INTERRUPTED,
        ended_at=_mtime(path) or storage.now(), duration_s=seconds, recovered_s=seconds,
        error=_interruption_text(seconds, completed, cause), end_reason=cause,
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


def close_open_sessions(storage: Storage, recipient: age.X25519Recipient | None,
                        rescue: RescueKeys, audit: AuditLog,
                        reasons: Mapping[int, str] | None = None) -> list[Recovered]:
    """While nothing is being recorded: close every session still marked ``recording``.

    Two sessions are never recording at once, so the recorder calls this before
    it starts one. ``reasons`` holds why the recorder itself could not close a
    session (a full disk); such a stream is left for the salvage reader. Any
    other session was left open by something else and is completed like a crash.
    """
    reasons = reasons or {}
    return [recover_session(storage, session, recipient, rescue, audit,
                            reason=reasons.get(session.id, LEFT_OPEN_REASON),
                            complete=session.id not in reasons)
            for session in storage.list_sessions(states=(State.RECORDING,))]


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
