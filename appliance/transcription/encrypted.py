"""The recorder's encrypted WAV read in salvage mode, for transcription.

:class:`SalvageFile` turns an :class:`appliance.age.SkippingReader` into the
file the WAV reader reads: a chunk that failed to authenticate reads as zeros
(digital silence) of its exact length, so everything after it keeps its time,
and each such stretch is reported in seconds of audio. When the damaged chunk
is the first, the WAV header is lost with it; the session's
:class:`RecordedFormat` then stands in for it (the recorder always writes the
same 44-byte header).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

from appliance import age


@dataclass(frozen=True)
class RecordedFormat:
    """How the recorder wrote a session's audio (its row says): the format, for
    when the WAV header itself, in the first encrypted chunk, cannot be read,
    and whether the recorder closed the stream (not a session it was cut off
    from), so that a damaged short last chunk is a gap rather than a torn end
    (see :class:`appliance.age.SkippingReader`)."""

    channels: int
    sample_rate: int
    finished: bool = False


# The recorder's WAV header (appliance.recorder.capture.wav_header) is 44 bytes;
# tests/transcription/test_job.py checks that the two agree.
RECORDER_HEADER_BYTES = 44


class Status(Protocol):
    """Where :class:`SalvageFile` reports (``reader.ReadStatus``)."""

    truncated: bool
    reason: str | None
    warnings: list[str]
    gaps: list[tuple[float, float]]


class SalvageFile(io.RawIOBase):
    """The salvaging age stream as a file; records in ``status`` its gaps (in
    seconds of audio, once :meth:`audio_starts` says where the audio begins) and
    where and why it ended early."""

    def __init__(self, stream: age.SkippingReader, status: Status):
        super().__init__()
        self._stream = stream
        self._status = status
        self._peeked = b""
        self._position = 0  # plaintext bytes handed out
        self._audio_start: int | None = None
        self._bytes_per_second = 1

    def starts_damaged(self) -> bool:
        """Whether the first chunk (the one holding the WAV header) is unreadable."""
        self._peeked = self._stream.read(1)  # decrypts the whole first chunk
        gaps = self._stream.gaps
        return bool(gaps) and gaps[0].offset == 0

    def audio_starts(self, channels: int, sample_rate: int) -> None:
        """The header ends here: gaps are measured in seconds of 16-bit audio from this point."""
        self._audio_start = self._position
        self._bytes_per_second = 2 * channels * sample_rate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = len(self._peeked[:len(view)])
        view[:n], self._peeked = self._peeked[:n], self._peeked[n:]
        n += self._stream.readinto(view[n:]) if n < len(view) else 0
        self._position += n
        self._note_gaps()
        if n == 0:
            self._note_end()
        return n

    def _note_gaps(self) -> None:
        if self._audio_start is None or not self._stream.gaps:
            return
        start, rate = self._audio_start, self._bytes_per_second
        spans = ((max(0, g.offset - start) / rate, max(0, g.end - start) / rate)
                 for g in self._stream.gaps)
        self._status.gaps = [(round(a, 3), round(b, 3)) for a, b in spans if b > a]

    def _note_end(self) -> None:
        status = self._status
        if self._stream.truncated and not status.truncated:
            status.truncated = True
            status.reason = "the recording was cut off (power loss or crash) and its end is missing"
        if self._stream.trailing_data and "data after its end was ignored" not in status.warnings:
            status.warnings.append("data after its end was ignored")
