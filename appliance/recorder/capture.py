"""Audio sources behind one interface: PyAudio capture and WAV file playback.

A *source* describes a microphone (or a file standing in for one): its
:class:`AudioFormat`, a :meth:`~AudioSource.probe` that says whether it is
there, and :meth:`~AudioSource.open`, which starts delivering 16-bit PCM frames
to a :class:`FrameSink` from the source's own thread and returns a
:class:`Capture` handle. The recorder's sink is a :class:`FrameQueue`: a bounded
queue that never blocks a real-time audio thread, and a :class:`StreamPump`
thread that drains it into a writer (the age stream).

Everything here deals in plain bytes; encryption happens downstream.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import math
import queue
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from appliance.errors import AudioDeviceError

if TYPE_CHECKING:
    import pyaudio

log = logging.getLogger(__name__)

SAMPLE_BYTES = 2  # signed 16-bit little-endian, always
WAV_HEADER_BYTES = 44
UNKNOWN_SIZE = 0xFFFFFFFF
# Seconds of audio a capture may run ahead of its pace. A real microphone never
# gets this far ahead of the wall clock (crystal drift is well under 0.1 %),
# but an ALSA ``file`` PCM in a test rig delivers thousands of times faster
# than real time; see PyAudioSource.
PACE_SLACK_S = 2.0
PACE_SLACK_FRACTION = 0.005


@dataclass(frozen=True)
class AudioFormat:
    """Signed 16-bit PCM: sample rate, channels and frames per delivered block."""

    sample_rate: int = 16000
    channels: int = 1
    frames_per_buffer: int = 1600

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample per channel)."""
        return SAMPLE_BYTES * self.channels

    @property
    def bytes_per_second(self) -> int:
        """PCM bytes per second of audio."""
        return self.frame_bytes * self.sample_rate

    def describe(self) -> str:
        """For messages: "16000 Hz mono"."""
        return f"{self.sample_rate} Hz {'mono' if self.channels == 1 else 'stereo'}"


def wav_header(fmt: AudioFormat) -> bytes:
    """A 44-byte PCM WAV header with "unknown length" sizes (0xFFFFFFFF).

    The recorder cannot know the length when it writes the first byte, and
    rewriting the header later would mean touching plaintext again; players and
    Python's ``wave`` read such a file to its end.
    """
    fmt_chunk = struct.pack(
        "<HHIIHH", 1, fmt.channels, fmt.sample_rate, fmt.bytes_per_second,
        fmt.frame_bytes, SAMPLE_BYTES * 8,
    )
    return (b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
            + b"data" + struct.pack("<I", UNKNOWN_SIZE))


# --- the interface ----------------------------------------------------------------


class FrameSink(Protocol):
    """Where a source delivers audio. Called from the source's thread."""

    def feed(self, data: bytes, frames: int, block: bool = False) -> None:
        """Accept a block of interleaved frames (``block``: may wait for room)."""

    def overrun(self) -> None:
        """The device reported lost input (its own buffer overflowed)."""

    def end(self) -> None:
        """The source has no more audio (a file reached its end)."""

    def fail(self, reason: str) -> None:
        """The device failed; ``reason`` is a sentence for the clinician's log."""


class Capture(Protocol):
    """A running capture, returned by :meth:`AudioSource.open`."""

    @property
    def failure(self) -> str | None:
        """Why the capture stopped delivering, or ``None`` while it is healthy."""

    def close(self) -> None:
        """Stop delivering; safe to call twice and after a failure."""


class AudioSource(Protocol):
    """A microphone, or a file standing in for one."""

    format: AudioFormat
    description: str

    def probe(self) -> None:
        """Raise :class:`AudioDeviceError` unless the device is there and usable."""

    def open(self, sink: FrameSink) -> Capture:
        """Start delivering frames to ``sink``; :class:`AudioDeviceError` if it cannot."""


# --- the recorder's sink ------------------------------------------------------------

_END = object()


class FrameQueue:
    """A bounded queue between an audio thread and the writer thread.

    ``feed`` never blocks a real-time thread: when the writer has fallen more
    than ``seconds`` behind, frames are dropped and counted, and the writer
    later writes the same number of silent frames in their place, so the
    recording's timeline (bookmarks, duration) stays true to the wall clock.
    """

    def __init__(self, fmt: AudioFormat, seconds: float,
                 wake: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 max_frames: int | None = None):
        self.format = fmt
        self._queue: queue.Queue = queue.Queue(
            max(4, math.ceil(seconds * fmt.sample_rate / fmt.frames_per_buffer)))
        self._wake = wake or (lambda: None)
        self._clock = clock
        self._gap = 0
        self._closed = threading.Event()
        self.frames_captured = 0  # including dropped ones: the timeline
        self.frames_dropped = 0
        self.overruns = 0
        self.first_frame_at: float | None = None
        self.ended = False
        self.failure: str | None = None
        self.max_frames = max_frames
        self.full = False  # max_frames reached: later frames are discarded

    @property
    def elapsed_s(self) -> float:
        """Seconds of audio captured so far."""
        return self.frames_captured / self.format.sample_rate

    def feed(self, data: bytes, frames: int, block: bool = False) -> None:
        """Queue a block; drop it (and remember the gap) if the writer is far behind."""
        if self._closed.is_set() or self.full:
            return
        if self.first_frame_at is None:
            self.first_frame_at = self._clock()
        if self.max_frames is not None and self.frames_captured + frames >= self.max_frames:
            # Cut at exactly the limit, whatever the block size or the loop's tick.
            frames = self.max_frames - self.frames_captured
            data = data[: frames * self.format.frame_bytes]
            self.full = True
            self._wake()
        item = (self._gap, data)
        try:
            if block:
                self._put_waiting(item)
            else:
                self._queue.put_nowait(item)
        except queue.Full:
            self._gap += frames
            self.frames_dropped += frames
        else:
            self._gap = 0
        self.frames_captured += frames

    def _put_waiting(self, item: tuple) -> None:
        # A file source may wait for room (no real-time deadline), but not forever.
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.25)
                return
            except queue.Full:
                continue
        raise queue.Full

    def overrun(self) -> None:
        """Count a device-side overflow (PortAudio's paInputOverflow)."""
        self.overruns += 1

    def end(self) -> None:
        """The source ran out of audio."""
        self.ended = True
        self._wake()

    def fail(self, reason: str) -> None:
        """The device failed."""
        if self.failure is None:
            self.failure = reason
        self._wake()

    def close(self, timeout: float = 10.0) -> bool:
        """No more input: flush the trailing gap and tell the writer to finish.

        Call after the capture is closed. Waits (at most ``timeout`` per item)
        for the writer to make room; False if it never did (the writer died).
        """
        self._closed.set()
        items = ([(self._gap, b"")] if self._gap else []) + [_END]
        self._gap = 0
        for item in items:
            try:
                self._queue.put(item, timeout=timeout)
            except queue.Full:
                return False
        return True

    def items(self) -> Iterator[tuple[int, bytes]]:
        """The writer's side: ``(silent_frames_before, data)`` until closed."""
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item


class Writer(Protocol):
    """Anything the pump writes to (an :class:`appliance.age.StreamWriter`)."""

    def write(self, data) -> int: ...


class StreamPump(threading.Thread):
    """Drains a :class:`FrameQueue` into a writer on its own thread.

    A write error stops the pump and is kept in :attr:`error`; the owner
    notices through ``wake`` and decides what to do with the session.
    """

    def __init__(self, frames: FrameQueue, out: Writer,
                 wake: Callable[[], None] | None = None):
        super().__init__(name="holdnote-writer", daemon=True)
        self.frames = frames
        self.out = out
        self._wake = wake or (lambda: None)
        self._silence = bytes(frames.format.frame_bytes * frames.format.frames_per_buffer)
        self.frames_written = 0
        self.first_write_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        """Write until the queue is closed or a write fails."""
        frame_bytes = self.frames.format.frame_bytes
        try:
            for gap, data in self.frames.items():
                if gap:
                    self._write_silence(gap * frame_bytes)
                if data:
                    self.out.write(data)
                    if self.first_write_at is None:
                        self.first_write_at = time.monotonic()
                self.frames_written += gap + len(data) // frame_bytes
        except BaseException as error:  # noqa: BLE001 - reported to the owner, not lost
            self.error = error
            log.error("writing the recording failed: %s", error)
            self._wake()

    def _write_silence(self, count: int) -> None:
        while count > 0:
            block = self._silence[: min(count, len(self._silence))]
            self.out.write(block)
            count -= len(block)


# --- native library noise ------------------------------------------------------------

# ALSA and JACK print every failed probe of a PCM that does not exist on this
# machine ("cannot find card 0", "jack server is not running") straight to
# stderr, i.e. into the journal. Route them to debug logging instead.
_ALSA_HANDLER_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_JACK_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_native_handlers: list = []  # keep the C callbacks alive


def _alsa_message(file, line, function, err, fmt) -> None:
    log.debug("alsa: %s:%s %s: %s", (file or b"").decode(errors="replace"), line,
              (function or b"").decode(errors="replace"), (fmt or b"").decode(errors="replace"))


def _jack_message(text) -> None:
    log.debug("jack: %s", (text or b"").decode(errors="replace"))


def quiet_native_audio_logs() -> None:
    """Send ALSA's and JACK's library chatter to debug logging (once per process)."""
    if _native_handlers:
        return
    alsa_handler = _ALSA_HANDLER_TYPE(_alsa_message)
    jack_handler = _JACK_HANDLER_TYPE(_jack_message)
    _native_handlers.extend([alsa_handler, jack_handler])
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("asound")).snd_lib_error_set_handler(alsa_handler)
    with contextlib.suppress(OSError, AttributeError, TypeError):
        jack = ctypes.CDLL(ctypes.util.find_library("jack"))
        jack.jack_set_error_function(jack_handler)
        jack.jack_set_info_function(jack_handler)


# --- PyAudio -----------------------------------------------------------------------------


class PyAudioSource:
    """A microphone through PyAudio (PortAudio on ALSA), in callback mode.

    ``device`` is ``"default"``, an index (``"2"``) or part of a device name
    (``"USB"``), as in ``audio.device``. ``max_speed`` caps delivery at that
    many times real time (slack: :data:`PACE_SLACK_S`). A real microphone
    never reaches the cap, so it changes nothing on the appliance; it exists
    because an ALSA ``file`` PCM (the test rig, the system test) would
    otherwise deliver as fast as the CPU allows. ``None`` removes the cap.
    """

    def __init__(self, device: str, fmt: AudioFormat, *, max_speed: float | None = 1.0,
                 stall_timeout: float = 3.0):
        self.device = device
        self.format = fmt
        self.max_speed = max_speed
        self.stall_timeout = stall_timeout
        self.description = f"microphone {device!r} ({fmt.describe()})"
        self._pa: pyaudio.PyAudio | None = None
        self._lock = threading.Lock()

    def _pyaudio(self, fresh: bool = False):
        import pyaudio

        if fresh and self._pa is not None:
            # PortAudio lists devices once, at initialisation: re-initialise to
            # see a USB microphone that was plugged back in.
            with contextlib.suppress(Exception):
                self._pa.terminate()
            self._pa = None
        if self._pa is None:
            quiet_native_audio_logs()
            self._pa = pyaudio.PyAudio()
        return self._pa

    def _inputs(self, pa) -> list[tuple[int, str]]:
        found = []
        for index in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(index)
            if info.get("maxInputChannels", 0) >= self.format.channels:
                found.append((index, str(info.get("name", "?"))))
        return found

    def _find(self, pa) -> int:
        inputs = self._inputs(pa)
        wanted = self.device.strip()
        if wanted.isdigit():
            matches = [i for i, _ in inputs if i == int(wanted)]
        elif wanted.lower() == "default":
            try:
                matches = [int(pa.get_default_input_device_info()["index"])]
            except (OSError, KeyError):
                matches = []
        else:
            matches = [i for i, name in inputs if wanted.casefold() in name.casefold()]
        if not matches:
            listed = ", ".join(f"{i}: {name}" for i, name in inputs) or "none"
            raise AudioDeviceError(
                f"microphone {wanted!r} not found (input devices with "
                f"{self.format.channels} channel(s): {listed}); plug it in or set audio.device"
            )
        return matches[0]

    def probe(self) -> None:
        """Find the configured device, re-scanning once if it is not listed."""
        with self._lock:
            try:
                self._find(self._pyaudio())
            except AudioDeviceError:
                self._find(self._pyaudio(fresh=True))

    def open(self, sink: FrameSink) -> Capture:
        """Open the stream in callback mode; frames go to ``sink``."""
        with self._lock:
            try:
                capture = self._open(sink, self._pyaudio())
            except AudioDeviceError:
                # The device list is from the last initialisation; the device
                # may have been re-plugged under another index since.
                capture = self._open(sink, self._pyaudio(fresh=True))
        return capture

    def _open(self, sink: FrameSink, pa) -> Capture:
        import pyaudio

        index = self._find(pa)
        capture = _PyAudioCapture(self, sink)
        try:
            capture.stream = pa.open(
                format=pyaudio.paInt16, channels=self.format.channels,
                rate=self.format.sample_rate, input=True, input_device_index=index,
                frames_per_buffer=self.format.frames_per_buffer,
                stream_callback=capture.callback,
            )
        except (OSError, ValueError) as error:
            raise AudioDeviceError(
                f"cannot open microphone {self.device!r} for {self.format.describe()} "
                f"16-bit capture: {error}"
            ) from None
        log.debug("capture opened on device %s (%s)", index, self.format.describe())
        return capture

    def close(self) -> None:
        """Release PortAudio (at daemon exit)."""
        with self._lock:
            if self._pa is not None:
                with contextlib.suppress(Exception):
                    self._pa.terminate()
                self._pa = None


class _PyAudioCapture:
    """One open PyAudio stream and its health."""

    def __init__(self, source: PyAudioSource, sink: FrameSink):
        self.source = source
        self.sink = sink
        self.stream = None
        self._frames = 0
        self._started = time.monotonic()
        self._last_callback = self._started
        self._closed = False
        self._error: str | None = None

    def callback(self, in_data, frame_count, time_info, status_flags):
        """PortAudio's callback: hand the block on, never block for long."""
        import pyaudio

        try:
            self._last_callback = time.monotonic()
            if status_flags & pyaudio.paInputOverflow:
                self.sink.overrun()
            self.sink.feed(in_data, frame_count)
            self._frames += frame_count
            self._pace()
        except Exception as error:  # noqa: BLE001 - PortAudio would swallow it
            self._error = f"audio callback failed: {error}"
            self.sink.fail(self._error)
            return (None, pyaudio.paAbort)
        return (None, pyaudio.paContinue)

    def _pace(self) -> None:
        speed = self.source.max_speed
        if not speed:
            return
        # In seconds of audio: how far delivery is ahead of ``speed`` x the wall clock.
        delivered = self._frames / self.source.format.sample_rate
        ahead = delivered - (time.monotonic() - self._started) * speed
        if ahead > max(PACE_SLACK_S, PACE_SLACK_FRACTION * delivered):
            time.sleep((ahead - PACE_SLACK_S / 2) / speed)

    @property
    def failure(self) -> str | None:
        """Why the stream stopped: it went inactive, or no audio arrived for a while."""
        if self._closed or self.stream is None:
            return None
        if self._error:
            return self._error
        try:
            active = self.stream.is_active()
        except OSError as error:
            return f"microphone {self.source.device!r} failed: {error}"
        if not active:
            return f"microphone {self.source.device!r} stopped delivering audio (unplugged?)"
        silent_for = time.monotonic() - self._last_callback
        if silent_for > self.source.stall_timeout:
            return f"no audio from microphone {self.source.device!r} for {silent_for:.0f} s"
        return None

    def close(self) -> None:
        """Stop and close the stream; errors from a vanished device are only logged."""
        if self._closed:
            return
        self._closed = True
        if self.stream is None:
            return
        for step in (self.stream.stop_stream, self.stream.close):
            try:
                step()
            except OSError as error:
                log.warning("closing the microphone stream: %s", error)


# --- WAV file -----------------------------------------------------------------------------


class WavFileSource:
    """A 16-bit PCM WAV file played as if it were a microphone.

    ``speed`` is a multiple of real time (1.0: as a live microphone would;
    ``None``: as fast as the writer takes it, never dropping). At the end of
    the file the sink's ``end`` is called (the recorder then finishes the
    session normally), unless ``loop`` is set. Used by the tests, the
    benchmark and ``holdnote demo``.
    """

    def __init__(self, path: str | Path, *, speed: float | None = 1.0,
                 frames_per_buffer: int = 1600, loop: bool = False):
        self.path = Path(path)
        self.speed = speed
        self.loop = loop
        with self.open_wave() as wav:
            self.format = AudioFormat(wav.getframerate(), wav.getnchannels(), frames_per_buffer)
        self.description = f"file {self.path.name} ({self.format.describe()})"

    @contextlib.contextmanager
    def open_wave(self) -> Iterator[wave.Wave_read]:
        try:
            # Not opened in the with below: only errors from opening are reworded.
            wav = wave.open(str(self.path), "rb")  # noqa: SIM115 - closed by the with below
        except (OSError, EOFError, wave.Error) as error:
            raise AudioDeviceError(f"cannot read audio file {self.path}: {error}") from None
        with wav:
            if wav.getsampwidth() != SAMPLE_BYTES or wav.getnchannels() not in (1, 2):
                raise AudioDeviceError(
                    f"{self.path}: need 16-bit mono or stereo PCM, got "
                    f"{wav.getsampwidth() * 8}-bit with {wav.getnchannels()} channels"
                )
            yield wav

    def probe(self) -> None:
        """The file is there and still in the same format."""
        with self.open_wave() as wav:
            if (wav.getframerate(), wav.getnchannels()) != (
                    self.format.sample_rate, self.format.channels):
                raise AudioDeviceError(f"{self.path} changed format since start-up")

    def open(self, sink: FrameSink) -> Capture:
        """Start the playback thread."""
        self.probe()
        capture = _WavCapture(self, sink)
        capture.start()
        return capture

    def read_blocks(self, wav: wave.Wave_read) -> Iterator[bytes]:
        """Blocks of ``frames_per_buffer`` frames (tests override this to fail)."""
        while True:
            data = wav.readframes(self.format.frames_per_buffer)
            if not data:
                return
            yield data


class _WavCapture(threading.Thread):
    """The playback thread of a :class:`WavFileSource`."""

    def __init__(self, source: WavFileSource, sink: FrameSink):
        super().__init__(name="holdnote-wav-source", daemon=True)
        self.source = source
        self.sink = sink
        self._halt = threading.Event()
        self._failure: str | None = None

    @property
    def failure(self) -> str | None:
        """Why playback failed, if it did."""
        return self._failure

    def run(self) -> None:
        """Deliver the file block by block, paced by ``speed``."""
        fmt = self.source.format
        started, frames = time.monotonic(), 0
        try:
            while not self._halt.is_set():
                with self.source.open_wave() as wav:
                    for data in self.source.read_blocks(wav):
                        if self._halt.is_set():
                            return
                        count = len(data) // fmt.frame_bytes
                        self.sink.feed(data, count, block=self.source.speed is None)
                        frames += count
                        if self.source.speed:
                            due = started + frames / (fmt.sample_rate * self.source.speed)
                            if self._halt.wait(max(0.0, due - time.monotonic())):
                                return
                if not self.source.loop:
                    self.sink.end()
                    return
        except (OSError, EOFError, wave.Error, AudioDeviceError) as error:
            self._failure = f"audio file {self.source.path.name} failed: {error}"
            self.sink.fail(self._failure)

    def close(self) -> None:
        """Stop playback and wait for the thread."""
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)

