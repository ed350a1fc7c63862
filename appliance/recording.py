"""One recording: microphone -> bounded queue -> writer thread -> age file on disk.

A :class:`Recording` opens the audio source first (so the first words after
the press are already queued), then the session row and its file. A
:class:`~appliance.audio.StreamPump` thread drains the
:class:`~appliance.audio.FrameQueue` into an
:class:`appliance.age.StreamWriter`: a WAV with an "unknown length" header,
then PCM, encrypted to the practice public key and to the session's rescue key
(see :mod:`appliance.recovery`), each completed 64 KiB chunk fsynced. Nothing
unencrypted reaches the disk.

The recording does not decide when to stop: :meth:`Recording.problem` reports
what went wrong (disk, device, length limit, source ended) and the
:class:`appliance.recorder.Recorder` that owns it acts on that.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from appliance import age
from appliance.audio import AudioSource, FrameQueue, StreamPump, wav_header
from appliance.audit import AuditLog
from appliance.errors import HoldnoteError
from appliance.recovery import RescueKeys, recover_session
from appliance.storage import Session, State, Storage, fsync_dir


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
