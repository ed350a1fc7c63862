"""One recording: microphone -> bounded queue -> writer thread -> age file on disk.

A :class:`Recording` opens the audio source first (so the first words after
the press are already queued), then the session row and its file. A
:class:`~appliance.recorder.capture.StreamPump` thread drains the
:class:`~appliance.recorder.capture.FrameQueue` into an
:class:`appliance.age.StreamWriter`: a WAV with an "unknown length" header,
then PCM, encrypted to the practice public key and to the session's rescue key
(see :mod:`appliance.recorder.recovery`), each completed 64 KiB chunk fsynced. Nothing
unencrypted reaches the disk.

The recording does not decide when to stop: :meth:`Recording.problem` reports
what went wrong (disk, device, length limit, source ended) and the
:class:`appliance.recorder.daemon.Recorder` that owns it acts on that.

Whatever fails while writing (a chunk, the final chunk, the fsync, the close:
a full disk most often) ends the session the same way: the stream is left with
every completed chunk, the session becomes ``interrupted`` with the reason, and
the disk's reserve (:mod:`appliance.recorder.reserve`) is given up first so the
database can record it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from appliance import age
from appliance.access.audit import AuditLog
from appliance.errors import HoldnoteError, StorageError
from appliance.fsutil import fsync_dir
from appliance.recorder.capture import AudioSource, Capture, FrameQueue, StreamPump, wav_header
from appliance.recorder.recovery import RescueKeys, recover_session
from appliance.recorder.reserve import DiskReserve, write_failure_reason
from appliance.store.db import Session, State, Storage


class _Live(NamedTuple):
    """What :meth:`Recording.start` set up."""

    session: Session
    capture: Capture
    pump: StreamPump
    stream: age.StreamWriter
    file: BinaryIO


class Recording:
    """One session being recorded: capture -> queue -> writer thread -> age file."""

    def __init__(self, storage: Storage, recipient: age.X25519Recipient, source: AudioSource,
                 *, queue_seconds: float, max_seconds: float, rescue: RescueKeys,
                 wake: Callable[[], None], reserve: DiskReserve | None = None,
                 owner_id: int | None = None):
        self.storage = storage
        self.owner_id = owner_id  # the room's clinician (None: unassigned until claimed)
        self.recipient = recipient
        self.source = source
        self.format = source.format
        self.rescue = rescue
        self.wake = wake
        self.reserve = reserve
        self.write_failure: str | None = None  # why writing failed, once it has
        self.frames = FrameQueue(source.format, queue_seconds, wake,
                                 max_frames=int(max_seconds * source.format.sample_rate))
        self.session: Session | None = None
        self.bookmarks = 0
        self.capture: Capture | None = None
        self.pump: StreamPump | None = None
        self._file: BinaryIO | None = None
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
            session = self.session = self.storage.create_session(
                self.format.channels, self.format.sample_rate, owner_id=self.owner_id)
            stream = self._open_stream(session)
        except BaseException:
            self._abandon()
            raise
        self.pump = StreamPump(self.frames, stream, self.wake)
        self.pump.start()
        return session

    def _open_stream(self, session: Session) -> age.StreamWriter:
        recipients: list[age.Recipient] = [self.recipient]
        rescue = self.rescue.create(session.id)
        if rescue is not None:
            recipients.append(rescue)
        path = session.audio_path
        if path is None:  # create_session always assigns one
            raise StorageError(f"session {session.id} has no audio path")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        # Kept open for the whole recording; stop() or _abandon() closes it.
        self._file = open(fd, "wb", buffering=0)  # noqa: SIM115
        fsync_dir(path.parent)  # the name survives a power cut too
        stream = self._stream = age.StreamWriter(self._file, recipients, fsync_each_chunk=True)
        stream.write(wav_header(self.format))
        return stream

    def _live(self) -> _Live:
        """The parts :meth:`start` set up; asking before it is a programming error."""
        if (self.session is None or self.capture is None or self.pump is None
                or self._stream is None or self._file is None):
            raise RuntimeError("the recording has not been started")
        return _Live(self.session, self.capture, self.pump, self._stream, self._file)

    @property
    def session_id(self) -> int:
        """The id of the session being recorded (once started)."""
        if self.session is None:
            raise RuntimeError("the recording has not been started")
        return self.session.id

    def _abandon(self) -> None:
        """Undo a start that failed half-way: nothing was recorded, nothing is kept."""
        if self.capture is not None:
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
        failure = self.frames.failure or (self.capture.failure if self.capture is not None else None)
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
        self.bookmarks = len(self.storage.add_bookmark(self.session_id, offset).bookmarks)
        return offset

    def stop(self, note: str | None, audit: AuditLog, end_reason: str | None = None) -> Session:
        """Finish the stream (final chunk, fsync) and mark the session recorded.

        ``note`` goes to the session's ``error`` text, ``end_reason`` says why
        it stopped when it was not a person. If writing failed, now or before,
        the session ends ``interrupted`` with what reached the disk instead:
        see :meth:`_stop_broken`.
        """
        live = self._live()
        live.capture.close()
        self.frames.close()
        live.pump.join(timeout=60)
        if live.pump.error is not None or live.pump.is_alive():
            return self._stop_broken(live, audit, live.pump.error)
        try:
            live.stream.close()  # the final chunk: a full disk refuses it here
            live.file.close()
        except OSError as error:
            return self._stop_broken(live, audit, error)
        duration = live.pump.frames_written / self.format.sample_rate
        session = self.storage.transition(
            live.session.id, State.RECORDED, ended_at=self.storage.now(),
            duration_s=round(duration, 2), error=note, end_reason=end_reason,
        )
        self.rescue.discard(live.session.id)
        return session

    def _stop_broken(self, live: _Live, audit: AuditLog, error: BaseException | None) -> Session:
        """End a session whose writing failed, keeping every chunk that reached the disk.

        The stream is not re-written now (the disk may be full): its completed
        chunks stay readable by the salvage reader, and the rescue key is kept
        so the next start-up can complete it.
        """
        reason = self.write_failure = write_failure_reason(error)
        with contextlib.suppress(Exception):
            live.stream.abort()
        with contextlib.suppress(OSError):
            live.file.close()
        if self.reserve is not None:
            self.reserve.release()  # room for the state change and the audit entry
        recover_session(self.storage, self.storage.get_session(live.session.id), self.recipient,
                        self.rescue, audit, reason=reason, complete=False)
        return self.storage.get_session(live.session.id)
