"""Recorder benchmark: CPU per recorded minute (encrypted vs plain), dropped frames, latency.

Run by ``make bench`` (``python -m tests.bench``) or on its own with
``python -m tests.bench.bench_recorder``. ``HOLDNOTE_BENCH_QUICK=1`` records
1 minute instead of 10.

The microphone is the ALSA ``file`` PCM of the tests (real PyAudio, real
PortAudio callback thread). That device has no clock: left alone it delivers
thousands of times faster than real time, so the source paces it to
``PACE`` x real time. Every configuration therefore has to keep up with
``PACE`` times the live data rate, a harder job than the appliance's. "Dropped"
is counted twice, independently: frames the recorder's bounded queue had to
discard, and samples of the decrypted recording that differ from the input
file (a dropped block is replaced by silence, so it shows up there too).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from gpiozero.pins.mock import MockFactory

from appliance import age, config
from appliance.access.keys import KeyStore
from appliance.recorder.buttons import ButtonPanel, make_light
from appliance.recorder.capture import (
    WAV_HEADER_BYTES,
    AudioFormat,
    FrameQueue,
    PyAudioSource,
    StreamPump,
    wav_header,
)
from appliance.recorder.daemon import Recorder
from appliance.store.db import Storage
from tests.support import alsa

PACE = 20.0
FORMAT = AudioFormat(16000, 1, 1600)
LATENCY_TRIALS = 15
IDLE_SECONDS = 3.0
RECORD_PIN = 17


class TimedSource(PyAudioSource):
    """The real PyAudio source, noting when each capture delivers its first frame."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_frame = threading.Event()
        self.first_frame_at = 0.0

    def open(self, sink):
        self.first_frame.clear()
        original = sink.feed

        def feed(data, frames, block=False):
            if not self.first_frame.is_set():
                self.first_frame_at = time.monotonic()
                self.first_frame.set()
            original(data, frames, block)

        sink.feed = feed
        return super().open(sink)


class PlainDurableWriter:
    """The baseline: the same bytes written unencrypted, fsynced every 64 KiB like age chunks."""

    def __init__(self, path: Path):
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self.pending = 0

    def write(self, data) -> int:
        self.file.write(data)
        self.pending += len(data)
        if self.pending >= age.CHUNK_SIZE:
            self.pending = 0
            os.fsync(self.file.fileno())
        return len(data)

    def close(self) -> None:
        os.fsync(self.file.fileno())
        self.file.close()


def wait(predicate, timeout: float = 3600.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(0.05)


def compare(recorded: bytes, signal: np.ndarray) -> int:
    """Samples of the input missing from, or different in, the recording."""
    got = np.frombuffer(recorded, dtype="<i2")[: len(signal)]
    return int(np.count_nonzero(got != signal[: len(got)])) + max(0, len(signal) - len(got))


def pipeline_run(workdir: Path, signal: np.ndarray, encrypted: bool, recipient) -> dict:
    """Source -> queue -> writer thread -> file, with or without age in the writer."""
    source = PyAudioSource(alsa.PCM_NAME, FORMAT, max_speed=PACE)
    frames = FrameQueue(FORMAT, seconds=30.0)
    path = workdir / ("pipe.wav.age" if encrypted else "pipe.wav")
    path.unlink(missing_ok=True)
    if encrypted:
        handle = open(path, "xb", buffering=0)  # noqa: SIM115 - closed below
        out = age.StreamWriter(handle, [recipient], fsync_each_chunk=True)
    else:
        out = PlainDurableWriter(path)
    out.write(wav_header(FORMAT))
    pump = StreamPump(frames, out)
    pump.start()
    cpu = time.process_time()
    capture = source.open(frames)
    wait(lambda: frames.frames_captured >= len(signal))
    capture.close()
    frames.close()
    pump.join()
    out.close()
    cpu = time.process_time() - cpu
    if encrypted:
        handle.close()
    source.close()
    return {"cpu": cpu, "frames": pump.frames_written, "dropped": frames.frames_dropped,
            "path": path}


class Daemon:
    """The real Recorder with a mock button, as ``run_daemon`` would set it up."""

    def __init__(self, workdir: Path):
        data = workdir / "daemon"
        self.cfg = config.from_dict({
            "paths": {"data_dir": str(data / "data"), "runtime_dir": str(data / "run"),
                      "recorder_socket": str(data / "run" / "recorder.sock")},
            "audio": {"device": alsa.PCM_NAME},
            "gpio": {"bounce_seconds": 0.0},
            "recorder": {"min_free_mb": 50, "stop_free_mb": 20},
        })
        self.storage = Storage(self.cfg.paths.data_dir)
        self.keys = KeyStore(self.storage, self.cfg.paths.runtime_dir, work_factor=10)
        if not self.keys.is_initialized():
            self.keys.init("bench", "benchmark passphrase")
        self.factory = MockFactory()
        self.source = TimedSource(alsa.PCM_NAME, FORMAT, max_speed=PACE)
        self.recorder = Recorder(self.cfg, self.storage, self.source, keys=self.keys,
                                 light=make_light(self.cfg.gpio, self.factory))
        self.panel = ButtonPanel(self.cfg.gpio, lambda: self.recorder.state,
                                 lambda c: self.recorder.submit(c, "button"),
                                 pin_factory=self.factory)
        self.recorder.prepare()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.recorder.run, args=(self.stop,))
        self.thread.start()

    def press(self) -> float:
        pin = self.factory.pin(RECORD_PIN)
        pressed = time.monotonic()
        pin.drive_low()
        pin.drive_high()
        return pressed

    def record(self, frames: int) -> dict:
        """Press, record ``frames`` frames, press again; CPU, drops and the session."""
        self.source.first_frame.clear()
        cpu = time.process_time()
        pressed = self.press()
        wait(lambda: self.source.first_frame.is_set())
        latency = self.source.first_frame_at - pressed
        wait(lambda: self.recorder.snapshot()["elapsed_s"] * FORMAT.sample_rate >= frames)
        dropped = self.recorder.snapshot()["dropped_frames"]
        self.press()
        wait(lambda: self.recorder.state == "idle")
        cpu = time.process_time() - cpu
        session_id = self.recorder.snapshot()["last_session_id"]
        return {"cpu": cpu, "latency": latency, "dropped": dropped,
                "session": self.storage.get_session(session_id)}

    def plaintext(self, session) -> bytes:
        with age.StreamReader(session.audio_path, [self.keys.identity()]) as reader:
            return reader.read()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.panel.close()
        self.recorder.light.close()
        self.source.close()


HOG = "while True: pass"
# SCHED_IDLE: how holdnote-transcribe.service runs its CPU-heavy work beside the recorder.
IDLE_HOG = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n" + HOG


def cpu_hogs(code: str = HOG, count: int = 2) -> list[subprocess.Popen]:
    """Busy processes, one per core."""
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def with_hogs(code: str, daemon: Daemon, signal: np.ndarray, minutes: float):
    hogs = cpu_hogs(code)
    try:
        return daemon_rows(daemon, signal, minutes)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def daemon_rows(daemon: Daemon, signal: np.ndarray, minutes: float) -> tuple[dict, list[float]]:
    run = daemon.record(len(signal))
    recorded = daemon.plaintext(run["session"])
    row = {"cpu_per_min": run["cpu"] / minutes, "dropped": run["dropped"],
           "differing": compare(recorded[WAV_HEADER_BYTES:], signal)}
    latencies = [run["latency"]]
    short = int(0.5 * FORMAT.sample_rate)
    for _ in range(LATENCY_TRIALS - 1):
        latencies.append(daemon.record(short)["latency"])
    return row, latencies


def measure(workdir: Path, signal: np.ndarray, minutes: float) -> dict:
    daemon = Daemon(workdir)
    recipient = daemon.keys.recipient()
    rows = {}
    try:
        idle_cpu = time.process_time()
        time.sleep(IDLE_SECONDS)  # the daemon's own loop, light and buttons, nothing recorded
        idle_cpu = (time.process_time() - idle_cpu) / IDLE_SECONDS
        for name, encrypted in (("unencrypted pipeline", False), ("encrypted pipeline", True)):
            run = pipeline_run(workdir, signal, encrypted, recipient)
            data = run["path"].read_bytes()
            if encrypted:
                data = age.decrypt(data, [daemon.keys.identity()])
            rows[name] = {"cpu_per_min": run["cpu"] / minutes, "dropped": run["dropped"],
                          "differing": compare(data[WAV_HEADER_BYTES:], signal)}
        latency = {}
        rows["whole daemon (encrypted)"], latency["machine idle"] = daemon_rows(
            daemon, signal, minutes)
        rows["daemon + 2 hogs (normal)"], latency["2 hogs, normal"] = with_hogs(
            HOG, daemon, signal, minutes)
        rows["daemon + 2 hogs (SCHED_IDLE)"], latency["2 hogs, SCHED_IDLE"] = with_hogs(
            IDLE_HOG, daemon, signal, minutes)
    finally:
        daemon.close()
    return {"rows": rows, "latency": latency, "idle_cpu": idle_cpu}


def report(result: dict, minutes: float) -> None:
    rows = result["rows"]
    base = rows["unencrypted pipeline"]["cpu_per_min"]
    print(f"recorder: {minutes:g} min of {FORMAT.describe()} S16 from the ALSA file device "
          f"(real PyAudio), paced to {PACE:g}x real time")
    print(f"  {'configuration':30s} {'CPU s/rec.min':>13s} {'vs plain':>9s} "
          f"{'dropped':>8s} {'differing':>10s}")
    for name, row in rows.items():
        print(f"  {name:30s} {row['cpu_per_min']:13.3f} {row['cpu_per_min'] / base:8.2f}x "
              f"{row['dropped']:8d} {row['differing']:10d}")
    for label, values in result["latency"].items():
        ms = sorted(v * 1000 for v in values)
        print(f"  press-to-first-frame, {label:18s}: median {statistics.median(ms):5.1f} ms, "
              f"max {ms[-1]:5.1f} ms over {len(ms)} presses (target < 150 ms)")
    print(f"  idle daemon (loop, light, buttons): {result['idle_cpu'] * 1000:.1f} CPU-ms per "
          "second of wall time")
    print("  dropped = frames the bounded queue discarded; differing = samples of the "
          "decrypted\n  recording that are not the input's (silence stands in for a "
          "dropped block). Both 0: lossless.")


def main() -> None:
    """Print the recorder figures."""
    quick = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
    minutes = 1.0 if quick else 10.0
    signal = alsa.signal(minutes * 60, FORMAT.sample_rate, FORMAT.channels, seed=5)
    old_home = os.environ.get("HOME")
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-recorder-") as tmp:
        workdir = Path(tmp)
        os.environ["HOME"] = str(alsa.make_device(workdir, signal, pad_seconds=120))
        try:
            result = measure(workdir, signal, minutes)
        finally:
            if old_home is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = old_home
    report(result, minutes)


if __name__ == "__main__":
    main()
