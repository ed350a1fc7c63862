"""Reading recordings for transcription: 16 kHz float PCM, forward only, bounded memory.

Three kinds of input end up here: the recorder's age-encrypted WAV streams
(decrypted chunk by chunk in the salvage mode of
:class:`appliance.age.SkippingReader`: a chunk that fails to authenticate is
read as silence of its exact length and reported as a gap, so the audio after
it keeps its time; a stream that lost its end yields what it has), plain WAV
files, and anything else FFmpeg (PyAV) can decode, such as FLAC. Each is read
a block at a time and resampled to 16 kHz, so a two-hour recording never sits
in memory whole. Stereo is kept (two lavalier microphones carry who spoke);
more channels are mixed to mono.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from appliance import age
from appliance.errors import AudioFormatError, CryptoError, NoIdentityMatchError
from appliance.transcription.encrypted import RECORDER_HEADER_BYTES, RecordedFormat, SalvageFile

log = logging.getLogger(__name__)

RATE = 16000
AGE_MAGIC = b"age-encryption.org/v1\n"
AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"
_UNKNOWN_SIZE = 0xFFFFFFFF
_PCM_TAGS = (1, 0xFFFE)  # WAVE_FORMAT_PCM and WAVE_FORMAT_EXTENSIBLE
_READ_BYTES = 1 << 16


@dataclass
class ReadStatus:
    """What went wrong while reading, for the transcript's warnings.

    ``gaps`` are the unreadable stretches, ``(start, end)`` in seconds of the
    audio, that were read as silence; complete once the reader reached the end.
    """

    truncated: bool = False
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)


class AudioReader:
    """Decoded audio as float32 frames of shape ``(n, channels)`` at 16 kHz.

    ``read(n)`` returns fewer than ``n`` frames only at the end. ``status``
    says whether the input ended early (a cut-off recording, a damaged
    chunk) and why; what was read before that point is good.
    """

    sample_rate = RATE

    def __init__(self, blocks: Iterator[np.ndarray], channels: int, source_rate: int,
                 status: ReadStatus, closer=None):
        self.channels = channels
        self.source_rate = source_rate
        self.status = status
        self._blocks = blocks
        self._pending: list[np.ndarray] = []  # at most one partly used block
        self._closer = closer
        self.frames_read = 0

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames; an empty array at the end of the audio.

        The result is filled in place block by block, so reading a window
        needs the window's memory once, not twice.
        """
        out = np.empty((frames, self.channels), np.float32)
        filled = 0
        while filled < frames:
            block = self._pending.pop() if self._pending else next(self._blocks, None)
            if block is None:
                break
            take = min(len(block), frames - filled)
            out[filled:filled + take] = block[:take]
            filled += take
            if take < len(block):
                self._pending.append(block[take:])
        self.frames_read += filled
        return out[:filled] if filled < frames else out

    def skip(self, frames: int) -> int:
        """Read and discard ``frames`` frames (decryption is sequential); how many were skipped."""
        skipped = 0
        while skipped < frames:
            got = len(self.read(min(frames - skipped, RATE * 60)))
            if got == 0:
                break
            skipped += got
        return skipped

    def close(self) -> None:
        """Release the underlying file."""
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- opening -------------------------------------------------------------------------------


def open_audio(path: Path, identities: Sequence | None = None,
               recorded: RecordedFormat | None = None) -> AudioReader:
    """Open a WAV, FLAC (or other FFmpeg-readable) file, or an age-encrypted WAV.

    An age file needs ``identities`` (the unlocked practice identity); it is
    read in salvage mode, so a recording cut off by a power failure yields
    every complete chunk and ``status.truncated``, and a damaged chunk is
    silence in ``status.gaps``. If the damaged chunk is the first, which holds
    the WAV header, ``recorded`` (the session's format) stands in for the
    header; without it that is an error. Raises :class:`AudioFormatError` with
    a message a person can act on.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such audio file") from None
    except IsADirectoryError:
        raise AudioFormatError(f"{path} is a directory, not an audio file") from None
    except OSError as error:
        raise AudioFormatError(f"{path}: cannot read ({error.strerror})") from None
    if not head:
        raise AudioFormatError(f"{path} is empty (0 bytes): there is no audio to transcribe")
    if head.startswith((AGE_MAGIC, AGE_ARMOR)):
        return _open_age(path, identities, recorded)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        handle = path.open("rb")
        try:
            return wav_reader(handle, str(path), ReadStatus(), closer=handle.close)
        except AudioFormatError as error:
            handle.close()
            if "not 16-bit PCM" not in str(error):
                raise
    return _open_av(path)


def _open_age(path: Path, identities: Sequence | None,
              recorded: RecordedFormat | None) -> AudioReader:
    if not identities:
        raise AudioFormatError(
            f"{path} is encrypted: unlock the device (log in to the web page or run "
            "'holdnote keys unlock') to transcribe it")
    try:
        finished = recorded is not None and recorded.finished
        stream = age.SkippingReader(path, list(identities), finished=finished)
    except NoIdentityMatchError:
        raise AudioFormatError(
            f"{path} is encrypted to a different key than this device's; "
            "it cannot be transcribed here") from None
    except CryptoError as error:
        raise AudioFormatError(f"{path}: the encrypted file is damaged ({error})") from None
    status = ReadStatus()
    source = SalvageFile(stream, status)
    try:
        fmt = _age_header(source, path, recorded)
    except AudioFormatError:
        stream.close()
        raise
    source.audio_starts(fmt.channels, fmt.sample_rate)
    return _audio_reader(source, fmt, str(path), status, closer=stream.close)


def _age_header(source: SalvageFile, path: Path, recorded: RecordedFormat | None) -> WavFormat:
    """The WAV header, or the session's format standing in for an unreadable one."""
    if not source.starts_damaged():
        return parse_wav_header(source, str(path))
    if recorded is None:
        raise AudioFormatError(
            f"{path}: the first 64 KiB of the encrypted recording, which hold its WAV header, "
            "are damaged; transcribe it as a session ('holdnote transcribe --session ID'), "
            "whose recorded format stands in for the header")
    _read_exact(source, RECORDER_HEADER_BYTES)  # zeros where the recorder's header was
    log.warning("%s: the WAV header is unreadable; reading it as the session's format "
                "(%d channel(s), %d Hz)", path.name, recorded.channels, recorded.sample_rate)
    return WavFormat(recorded.channels, recorded.sample_rate, None)


# --- WAV -----------------------------------------------------------------------------------


class Readable(Protocol):
    """What the WAV reader needs of its input: a binary file or the decrypting stream."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class WavFormat:
    """The parts of a WAV ``fmt `` chunk transcription needs."""

    channels: int
    sample_rate: int
    data_bytes: int | None  # None: "unknown length", read to the end


def _read_exact(handle: Readable, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = handle.read(size - len(data))
        if not part:
            break
        data += part
    return bytes(data)


def parse_wav_header(handle: Readable, name: str) -> WavFormat:
    """Read a WAV header up to the start of its samples (streams: no seeking)."""
    riff = _read_exact(handle, 12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise AudioFormatError(f"{name} is not a WAV file (no RIFF/WAVE header)")
    fmt = None
    while True:
        head = _read_exact(handle, 8)
        if len(head) < 8:
            raise AudioFormatError(f"{name}: the WAV file has no audio data (no 'data' chunk); "
                                   "it is empty or was cut off before any sound was saved")
        kind, size = head[:4], struct.unpack("<I", head[4:])[0]
        if kind == b"data":
            if fmt is None:
                raise AudioFormatError(f"{name}: the WAV file has no 'fmt ' chunk")
            return WavFormat(fmt[0], fmt[1], None if size == _UNKNOWN_SIZE else size)
        body = _read_exact(handle, size + (size & 1))
        if kind == b"fmt ":
            fmt = _parse_fmt(body, name)


def _parse_fmt(body: bytes, name: str) -> tuple[int, int]:
    if len(body) < 16:
        raise AudioFormatError(f"{name}: the WAV 'fmt ' chunk is damaged")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag not in _PCM_TAGS or bits != 16:
        raise AudioFormatError(f"{name}: WAV is not 16-bit PCM (format {tag}, {bits} bits)")
    if not 1 <= channels <= 8 or not 4000 <= rate <= 192000:
        raise AudioFormatError(f"{name}: implausible WAV format ({channels} channels, {rate} Hz)")
    return channels, rate


def wav_reader(handle: Readable, name: str, status: ReadStatus, closer=None) -> AudioReader:
    """An :class:`AudioReader` over a 16-bit PCM WAV stream (plain or decrypted)."""
    return _audio_reader(handle, parse_wav_header(handle, name), name, status, closer)


def _audio_reader(handle: Readable, fmt: WavFormat, name: str, status: ReadStatus,
                  closer=None) -> AudioReader:
    out_channels = 2 if fmt.channels == 2 else 1
    blocks = _wav_blocks(handle, fmt, status, name)
    if fmt.sample_rate != RATE:
        blocks = _resampled(blocks, out_channels, fmt.sample_rate)
    return AudioReader(blocks, out_channels, fmt.sample_rate, status, closer)


def _wav_blocks(handle: Readable, fmt: WavFormat, status: ReadStatus,
                name: str) -> Iterator[np.ndarray]:
    frame_bytes = 2 * fmt.channels
    remaining = fmt.data_bytes
    carry = b""
    while remaining is None or remaining > 0:
        want = _READ_BYTES if remaining is None else min(_READ_BYTES, remaining)
        try:
            data = handle.read(want)
        except (CryptoError, OSError) as error:
            status.truncated, status.reason = True, f"reading stopped early: {error}"
            break
        if not data:
            if remaining:
                status.truncated = True
                status.reason = status.reason or f"{name} ends before the length its header gives"
            break
        if remaining is not None:
            remaining -= len(data)
        data = carry + data
        usable = len(data) - len(data) % frame_bytes
        carry = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, fmt.channels)
        yield _to_float(samples)


def _to_float(samples: np.ndarray) -> np.ndarray:
    """int16 frames -> float32 in [-1, 1); more than two channels are mixed to mono."""
    audio = samples.astype(np.float32) / 32768.0
    if audio.shape[1] > 2:
        audio = audio.mean(axis=1, keepdims=True)
    return audio


def _resampled(blocks: Iterator[np.ndarray], channels: int, rate: int) -> Iterator[np.ndarray]:
    """Resample float blocks to 16 kHz with FFmpeg's resampler (stateful, so seamless)."""
    layout = "stereo" if channels == 2 else "mono"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=RATE)
    for block in blocks:
        packed = np.ascontiguousarray(block, dtype=np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
        frame.sample_rate = rate
        yield from (_frame_array(f, channels) for f in resampler.resample(frame))
    yield from (_frame_array(f, channels) for f in resampler.resample(None))


def _frame_array(frame: av.AudioFrame, channels: int) -> np.ndarray:
    return frame.to_ndarray().reshape(-1, channels).astype(np.float32, copy=False)


# --- everything else: FFmpeg ---------------------------------------------------------------


def _open_av(path: Path) -> AudioReader:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise AudioFormatError(
            f"{path}: not a supported audio file ({_av_reason(error)}); "
            "use WAV or FLAC") from None
    if not container.streams.audio:
        container.close()
        raise AudioFormatError(f"{path}: the file holds no audio stream")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # FFmpeg has no decoder: an unknown WAV format tag, say
        container.close()
        raise AudioFormatError(f"{path}: its audio is in a format this device cannot decode; "
                               "convert it to 16-bit PCM WAV or FLAC")
    channels = 2 if stream.channels == 2 else 1
    status = ReadStatus()
    blocks = _av_blocks(container, stream, channels, status, path)
    return AudioReader(blocks, channels, stream.sample_rate or RATE, status, container.close)


def _av_reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _av_blocks(container, stream, channels: int, status: ReadStatus,
               path: Path) -> Iterator[np.ndarray]:
    layout = "stereo" if channels == 2 else "mono"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=RATE)
    frames = 0
    try:
        for packet in container.demux(stream):
            for frame in _decode(packet, status):
                for block in (_frame_array(f, channels) for f in resampler.resample(frame)):
                    frames += len(block)
                    yield block
    except av.error.FFmpegError as error:
        status.truncated = True
        status.reason = f"{path.name} is damaged; decoding stopped ({_av_reason(error)})"
    for block in (_frame_array(f, channels) for f in resampler.resample(None)):
        frames += len(block)
        yield block
    _check_length(stream, frames, status, path)


def _check_length(stream, frames: int, status: ReadStatus, path: Path) -> None:
    """A file that decodes to clearly less than its header's length was cut short."""
    if stream.duration is None or stream.time_base is None or status.truncated:
        return
    stated = float(stream.duration * stream.time_base)
    if frames / RATE < 0.98 * stated - 0.5:
        status.truncated = True
        status.reason = (f"{path.name} ends after {frames / RATE:.1f} s although its header "
                         f"says {stated:.1f} s (the file was cut short)")


def _decode(packet, status: ReadStatus) -> list:
    """Decode one packet; a damaged packet is skipped (and said so) rather than fatal."""
    try:
        return packet.decode()
    except av.error.InvalidDataError:
        if "damaged audio frames were skipped" not in status.warnings:
            status.warnings.append("damaged audio frames were skipped")
        return []
