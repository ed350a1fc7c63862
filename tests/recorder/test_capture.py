"""Audio sources and the capture pipeline: real PyAudio through an ALSA file PCM."""

from __future__ import annotations

import io
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.errors import AudioDeviceError
from appliance.recorder.capture import (
    WAV_HEADER_BYTES,
    AudioFormat,
    FrameQueue,
    PyAudioSource,
    StreamPump,
    WavFileSource,
    wav_header,
)
from tests.support import alsa


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Collector:
    """A FrameSink that keeps everything (what a source really delivered)."""

    def __init__(self):
        self.blocks: list[bytes] = []
        self.frames = 0
        self.ended = threading.Event()
        self.failures: list[str] = []

    def feed(self, data: bytes, frames: int, block: bool = False) -> None:
        self.blocks.append(bytes(data))
        self.frames += frames

    def overrun(self) -> None:
        pass

    def end(self) -> None:
        self.ended.set()

    def fail(self, reason: str) -> None:
        self.failures.append(reason)
        self.ended.set()

    def samples(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.blocks), dtype="<i2")


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1,
              width: int = 2) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


@pytest.fixture
def alsa_device(tmp_path, monkeypatch):
    """Make an ALSA capture device playing the given samples; ALSA reads it via HOME."""

    def make(samples: np.ndarray, channels: int = 1) -> Path:
        home = alsa.make_device(tmp_path, samples, channels=channels)
        monkeypatch.setenv("HOME", str(home))
        return home

    return make


def capture(source: PyAudioSource, frames: int) -> np.ndarray:
    sink = Collector()
    handle = source.open(sink)
    try:
        wait_until(lambda: sink.frames >= frames, what=f"{frames} frames")
    finally:
        handle.close()
        source.close()
    return sink.samples()


# --- WAV header ------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_wav_header_with_unknown_length_plays_to_the_end(channels):
    fmt = AudioFormat(16000, channels)
    pcm = alsa.signal(0.5, channels=channels).tobytes()
    assert len(wav_header(fmt)) == WAV_HEADER_BYTES
    with wave.open(io.BytesIO(wav_header(fmt) + pcm)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, channels, 2)
        assert wav.readframes(10**9) == pcm


# --- PyAudio through ALSA ---------------------------------------------------------------------


def test_pyaudio_captures_the_device_sample_for_sample(alsa_device):
    signal = alsa.signal(3.0)
    alsa_device(signal)
    source = PyAudioSource("holdnote_test", AudioFormat(), max_speed=None)
    got = capture(source, len(signal))
    assert np.array_equal(got[: len(signal)], signal)


def test_pyaudio_stereo_keeps_channels_interleaved(alsa_device):
    signal = alsa.signal(2.0, channels=2, seed=7)
    alsa_device(signal, channels=2)
    source = PyAudioSource("holdnote_test", AudioFormat(16000, 2), max_speed=None)
    got = capture(source, len(signal) // 2)
    assert np.array_equal(got[: len(signal)], signal)


def test_device_chosen_by_index(alsa_device):
    signal = alsa.signal(1.0, seed=3)
    alsa_device(signal)
    import pyaudio

    pa = pyaudio.PyAudio()
    try:
        index = next(i for i in range(pa.get_device_count())
                     if "holdnote_test" in pa.get_device_info_by_index(i)["name"])
    finally:
        pa.terminate()
    got = capture(PyAudioSource(str(index), AudioFormat(), max_speed=None), len(signal))
    assert np.array_equal(got[: len(signal)], signal)


def test_missing_device_names_what_is_there(alsa_device):
    alsa_device(alsa.signal(0.1))
    source = PyAudioSource("USB PnP", AudioFormat())
    with pytest.raises(AudioDeviceError, match="'USB PnP' not found.*holdnote_test"):
        source.probe()
    with pytest.raises(AudioDeviceError, match="not found"):
        source.open(Collector())
    source.close()


def test_capture_is_paced_to_real_time_by_default(alsa_device):
    # The ALSA file PCM runs thousands of times faster than real time. Paced,
    # a capture open for a moment holds seconds, not hours, of audio.
    alsa_device(alsa.signal(1.0))
    source = PyAudioSource("holdnote_test", AudioFormat())
    sink = Collector()
    handle = source.open(sink)
    wait_until(lambda: sink.frames >= 16000, what="first second")
    started = time.monotonic()
    time.sleep(0.5)
    handle.close()
    source.close()
    bound = (time.monotonic() - started + 1.0 + 2 * 2.0) * 16000  # elapsed + burst slack
    assert sink.frames < bound
    assert handle.failure is None


# --- the queue and the writer thread ----------------------------------------------------------


def test_queue_and_pump_write_every_frame_in_order():
    fmt = AudioFormat(16000, 1, 160)
    frames = FrameQueue(fmt, seconds=1.0)
    out = io.BytesIO()
    pump = StreamPump(frames, out)
    pump.start()
    signal = alsa.signal(2.0)
    for block in np.split(signal, 200):  # faster than the writer: a file source waits
        frames.feed(block.tobytes(), len(block), block=True)
    assert frames.close()
    pump.join(5)
    assert np.array_equal(np.frombuffer(out.getvalue(), "<i2"), signal)
    assert (pump.frames_written, frames.frames_dropped) == (len(signal), 0)


def test_overflow_drops_frames_but_keeps_the_timeline():
    fmt = AudioFormat(16000, 1, 1600)
    frames = FrameQueue(fmt, seconds=0.4)  # room for 4 blocks; the writer is not running
    blocks = [np.full(1600, i + 1, "<i2") for i in range(10)]
    for block in blocks:
        frames.feed(block.tobytes(), 1600)
    assert frames.frames_dropped == 6 * 1600
    assert frames.frames_captured == 10 * 1600
    out = io.BytesIO()
    pump = StreamPump(frames, out)
    pump.start()
    frames.feed(np.full(1600, 99, "<i2").tobytes(), 1600)  # arrives after the stall
    frames.close()
    pump.join(5)
    written = np.frombuffer(out.getvalue(), "<i2").reshape(-1, 1600)
    # Blocks 1-4 kept, 5-10 replaced by silence of the same length, then block 11.
    assert [int(b[0]) for b in written] == [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 99]
    assert pump.frames_written == frames.frames_captured


def test_pump_reports_a_write_error():
    class FullDisk:
        def write(self, data):
            raise OSError(28, "No space left on device")

    woken = threading.Event()
    frames = FrameQueue(AudioFormat(), seconds=1.0)
    pump = StreamPump(frames, FullDisk(), wake=woken.set)
    pump.start()
    frames.feed(bytes(3200), 1600)
    assert woken.wait(5)
    pump.join(5)
    assert isinstance(pump.error, OSError)
    assert frames.close(timeout=0.1) in (True, False)  # never hangs on a dead writer


# --- WAV file source --------------------------------------------------------------------------


def test_wav_source_delivers_the_file_and_ends(tmp_path):
    signal = alsa.signal(1.5, channels=2, seed=4)
    source = WavFileSource(write_wav(tmp_path / "a.wav", signal, channels=2), speed=None)
    assert source.format == AudioFormat(16000, 2, 1600)
    sink = Collector()
    handle = source.open(sink)
    assert sink.ended.wait(10)
    handle.close()
    assert np.array_equal(sink.samples(), signal)
    assert sink.failures == [] and handle.failure is None


def test_wav_source_loops_when_asked(tmp_path):
    signal = alsa.signal(0.2)
    source = WavFileSource(write_wav(tmp_path / "a.wav", signal), speed=None, loop=True)
    sink = Collector()
    handle = source.open(sink)
    wait_until(lambda: sink.frames >= 3 * len(signal), what="three passes")
    handle.close()
    got = sink.samples()
    assert np.array_equal(got[len(signal): 2 * len(signal)], signal)
    assert not sink.ended.is_set()


def test_wav_source_rejects_8_bit_audio(tmp_path):
    path = write_wav(tmp_path / "a.wav", np.zeros(800, np.uint8), width=1)
    with pytest.raises(AudioDeviceError, match="16-bit"):
        WavFileSource(path)


def test_wav_source_probe_fails_when_the_file_is_gone(tmp_path):
    path = write_wav(tmp_path / "a.wav", alsa.signal(0.1))
    source = WavFileSource(path)
    source.probe()
    path.unlink()
    with pytest.raises(AudioDeviceError, match="cannot read audio file"):
        source.probe()


def test_wav_source_read_error_is_a_device_failure(tmp_path):
    class Failing(WavFileSource):
        def read_blocks(self, wav):
            yield wav.readframes(1600)
            raise OSError(5, "Input/output error")

    source = Failing(write_wav(tmp_path / "a.wav", alsa.signal(1.0)), speed=None)
    sink = Collector()
    handle = source.open(sink)
    assert sink.ended.wait(5)
    handle.close()
    assert sink.frames == 1600
    assert "Input/output error" in sink.failures[0] and handle.failure == sink.failures[0]
