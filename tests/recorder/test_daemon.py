"""The recorder: button -> PyAudio -> encryption -> disk, its guards, crash recovery, systemd.

Real libraries, fake edges: gpiozero's MockFactory for the pins, an ALSA
``file`` PCM (tests/support/alsa.py) or a WAV file for the microphone, the stock
``age`` CLI to prove what is on disk decrypts to exactly what was captured.
The daemon tests at the end run ``holdnote recorder`` as a real process.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.errors import AudioDeviceError, TruncatedStreamError
from appliance.recorder import control
from appliance.recorder.buttons import make_light
from appliance.recorder.capture import WAV_HEADER_BYTES, AudioFormat, PyAudioSource, WavFileSource
from appliance.recorder.daemon import Recorder, RescueKeys, recover_sessions, run_daemon, wav_header
from appliance.store.db import State, Storage
from tests.conftest import make_config, need_tool
from tests.support import alsa

RECORD_PIN, MARK_PIN, LED_PIN = 17, 27, 18
MB = 1024 * 1024
SYSTEMD_VARIABLES = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID",
                     "JOURNAL_STREAM"}


# --- helpers ----------------------------------------------------------------------------------


def wait_for(predicate, what: str, timeout: float = 30.0):
    """Poll ``predicate`` until it returns something truthy (tests may poll; workers may not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (OSError, control.RecorderUnavailableError):
            result = None
        if result:
            return result
        time.sleep(0.03)
    raise AssertionError(f"timed out waiting for {what}")


def write_wav(path: Path, samples: np.ndarray, channels: int = 1, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def decrypt_with_age_cli(path: Path, identity: age.X25519Identity, tmp_path: Path) -> bytes:
    """Decrypt with the stock ``age`` tool: proof the file is a complete, standard stream."""
    tool = need_tool("age")
    key = tmp_path / "practice-key.txt"
    key.write_text(str(identity) + "\n")
    key.chmod(0o600)
    done = subprocess.run([tool, "-d", "-i", str(key), str(path)], capture_output=True,
                          timeout=60)
    assert done.returncode == 0, f"age -d failed: {done.stderr.decode()}"
    return done.stdout


def pcm_of(wav_bytes: bytes, fmt: AudioFormat) -> np.ndarray:
    """The samples of a recording, after checking its WAV header."""
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (
            fmt.sample_rate, fmt.channels, 2)
    return np.frombuffer(wav_bytes[WAV_HEADER_BYTES:], dtype="<i2")


def assert_no_plaintext_on_disk(signal: np.ndarray, *dirs: Path) -> None:
    """No file anywhere holds a stretch of the captured audio in the clear."""
    needle = signal[16000:16032].tobytes()  # 32 samples of noise: unique
    for directory in dirs:
        for path in directory.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix != ".raw":
                assert needle not in path.read_bytes(), f"plaintext audio found in {path}"


def audit_actions(storage: Storage) -> list[tuple[str, int | None]]:
    return [(e.action, e.session_id) for e in AuditLog(storage).entries(newest_first=False)]


class Rig:
    """A Recorder with mock pins, run on a thread as the daemon would run it."""

    def __init__(self, cfg, source, *, free_bytes=None, probe_interval: float = 0.1):
        self.cfg = cfg
        self.factory = MockFactory()
        self.storage = Storage(cfg.paths.data_dir)
        self.keys = KeyStore(self.storage, cfg.paths.runtime_dir, work_factor=10)
        self.recorder = Recorder(
            cfg, self.storage, source, keys=self.keys, light=make_light(cfg.gpio, self.factory),
            free_bytes=free_bytes, probe_interval=probe_interval, tick=0.05)
        self.recorder.prepare()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.recorder.run, args=(self.stop_event,))
        self.thread.start()

    def cmd(self, name: str) -> dict:
        return self.recorder.request(name, origin="test")

    def state(self) -> str:
        return self.recorder.snapshot()["state"]

    def led(self) -> str:
        return self.recorder.light.pattern

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the recorder loop did not stop"
        self.recorder.light.close()
        if hasattr(self.recorder.source, "close"):
            # PortAudio initialises once per process while any instance lives:
            # a source left open would pin the next test to this test's device.
            self.recorder.source.close()


@pytest.fixture
def rigs():
    made: list[Rig] = []

    def make(cfg, source, **kwargs) -> Rig:
        rig = Rig(cfg, source, **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def rig_config(tmp_path, **sections):
    """The test configuration: the ALSA test device, no debounce delay between presses."""
    base = {"gpio": {"bounce_seconds": 0.0}, "audio": {"device": alsa.PCM_NAME}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return make_config(tmp_path, **base)


# --- the whole path in-process: mock button -> PyAudio -> age -> disk -------------------------


class DaemonThread:
    """``run_daemon`` on a thread with a MockFactory, driven by its pins and its socket."""

    def __init__(self, cfg, source=None):
        self.cfg = cfg
        self.source = source
        self.factory = MockFactory()
        self.stop = threading.Event()
        self.exit_code = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        wait_for(lambda: self.status()["state"] in ("idle", "not_set_up", "error"),
                 "the daemon to answer")

    def _run(self) -> None:
        self.exit_code = run_daemon(
            self.cfg, pin_factory=self.factory, source=self.source, stop_event=self.stop)

    def status(self) -> dict:
        return control.send(self.cfg.paths.recorder_socket, {"cmd": "status"})

    def press(self, pin: int = RECORD_PIN) -> None:
        self.factory.pin(pin).drive_low()
        self.factory.pin(pin).drive_high()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert self.exit_code == 0


def test_button_press_records_the_microphone_sample_for_sample(
        tmp_path, monkeypatch, keystore, recovery_key):
    signal = alsa.signal(3.0, seed=11)
    monkeypatch.setenv("HOME", str(alsa.make_device(tmp_path, signal)))
    cfg = rig_config(tmp_path)
    daemon = DaemonThread(cfg)  # the default source: PyAudio on audio.device
    try:
        assert daemon.status()["state"] == "idle"
        assert daemon.factory.pin(LED_PIN).state in (True, False)  # the light is driven
        daemon.press()
        wait_for(lambda: daemon.status()["state"] == "recording", "recording to start")
        wait_for(lambda: daemon.factory.pin(LED_PIN).state is True, "the solid light")
        status = wait_for(lambda: (s := daemon.status())["elapsed_s"] >= 3.5 and s,
                          "3.5 s of audio")
        assert status["session_id"] == 1 and status["message"].startswith("Recording 00:00:0")
        daemon.press()
        wait_for(lambda: daemon.status()["state"] == "idle", "recording to stop")
    finally:
        daemon.close()

    storage = Storage(cfg.paths.data_dir)
    session = storage.get_session(1)
    assert session.state == State.RECORDED
    assert (session.channels, session.sample_rate) == (1, 16000)
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())
    assert np.array_equal(pcm[: len(signal)], signal)  # every sample, in order
    assert not pcm[len(signal):].any()  # then the silence that follows in the device
    assert session.duration_s == pytest.approx(len(pcm) / 16000, abs=0.01)
    assert audit_actions(storage)[-2:] == [("recording.start", 1), ("recording.stop", 1)]
    assert_no_plaintext_on_disk(signal, cfg.paths.data_dir, cfg.paths.runtime_dir)
    assert not any((cfg.paths.runtime_dir / "rescue").iterdir())  # rescue key destroyed


def test_stereo_recording_keeps_both_channels(tmp_path, monkeypatch, keystore, recovery_key):
    signal = alsa.signal(1.5, channels=2, seed=12)
    monkeypatch.setenv("HOME", str(alsa.make_device(tmp_path, signal, channels=2)))
    cfg = rig_config(tmp_path, audio={"channels": 2})
    daemon = DaemonThread(cfg)
    try:
        assert control.send(cfg.paths.recorder_socket, {"cmd": "start"})["ok"]
        wait_for(lambda: daemon.status()["elapsed_s"] >= 1.6, "1.6 s of audio")
        reply = control.send(cfg.paths.recorder_socket, {"cmd": "stop"})
    finally:
        daemon.close()
    assert reply["ok"] and reply["state"] == "idle" and reply["session_id"] == 1
    session = Storage(cfg.paths.data_dir).get_session(1)
    assert session.channels == 2
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat(16000, 2))
    assert np.array_equal(pcm[: len(signal)], signal)


# --- commands, bookmarks and the light --------------------------------------------------------


def test_mark_button_bookmarks_the_current_moment(tmp_path, rigs, recovery_key):
    source = WavFileSource(write_wav(tmp_path / "in.wav", alsa.signal(30.0)), speed=1.0)
    cfg = rig_config(tmp_path)
    rig = rigs(cfg, source)
    from appliance.recorder.buttons import ButtonPanel

    panel = ButtonPanel(cfg.gpio, lambda: rig.recorder.state,
                        lambda c: rig.recorder.submit(c, "button"), pin_factory=rig.factory)
    try:
        rig.factory.pin(MARK_PIN).drive_low()  # not recording: refused, nothing stored
        rig.factory.pin(MARK_PIN).drive_high()
        assert rig.cmd("start")["ok"]
        for expected in (1, 2):
            rig.factory.pin(MARK_PIN).drive_low()
            rig.factory.pin(MARK_PIN).drive_high()
            wait_for(lambda n=expected: rig.recorder.snapshot()["bookmarks"] == n, "the bookmark")
        rig.cmd("stop")
    finally:
        panel.close()
    session = rig.storage.get_session(1)
    assert len(session.bookmarks) == 2
    assert 0 <= session.bookmarks[0] <= session.bookmarks[1] <= session.duration_s
    marks = [a for a in audit_actions(rig.storage) if a[0] == "recording.mark"]
    assert marks == [("recording.mark", 1), ("recording.mark", 1)]


def test_control_commands_say_what_is_wrong(tmp_path, rigs, recovery_key):
    source = WavFileSource(write_wav(tmp_path / "in.wav", alsa.signal(5.0)), speed=1.0)
    rig = rigs(rig_config(tmp_path), source)
    refused = rig.cmd("stop")
    assert (refused["ok"], refused["error"], refused["state"]) == (False, "not recording", "idle")
    assert "not recording" in rig.cmd("mark")["error"]
    assert rig.recorder.handle({"cmd": "dance"})["error"].startswith("unknown command 'dance'")
    started = rig.cmd("start")
    assert started["ok"] and started["state"] == "recording" and rig.led() == "recording"
    again = rig.cmd("start")
    assert again["ok"] is False and again["error"] == "already recording"
    mark = rig.cmd("mark")
    assert mark["ok"] and mark["bookmarks"] == 1 and "bookmark_s" in mark
    stopped = rig.cmd("stop")
    assert stopped["ok"] and stopped["session_id"] == 1 and rig.led() == "idle"
    assert rig.recorder.snapshot()["last_session_id"] == 1


def test_wav_source_end_finishes_the_session(tmp_path, rigs, recovery_key, keystore):
    signal = alsa.signal(2.5, seed=5)
    source = WavFileSource(write_wav(tmp_path / "in.wav", signal), speed=None)
    rig = rigs(rig_config(tmp_path), source)
    assert rig.cmd("start")["ok"]
    wait_for(lambda: rig.state() == "idle", "the file to end")
    session = rig.storage.get_session(1)
    assert session.state == State.RECORDED and session.error is None
    assert session.duration_s == 2.5
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())
    assert np.array_equal(pcm, signal)


# --- guards -----------------------------------------------------------------------------------


def test_not_set_up_refuses_until_the_keys_exist(tmp_path, rigs, keystore):
    source = WavFileSource(write_wav(tmp_path / "in.wav", alsa.signal(5.0)), speed=1.0)
    rig = rigs(rig_config(tmp_path), source, probe_interval=30.0)
    assert rig.state() == "not_set_up" and rig.led() == "not_set_up"
    refused = rig.cmd("start")
    assert refused["ok"] is False and "practice keys do not exist" in refused["error"]
    assert rig.storage.count_sessions() == 0
    keystore.init("dr.rivera", "correct horse battery staple")  # setup happens meanwhile
    started = rig.cmd("start")  # re-checked on the start request itself
    assert started["ok"] and started["state"] == "recording"
    rig.cmd("stop")


def test_not_set_up_clears_by_itself_after_setup(tmp_path, rigs, keystore):
    source = WavFileSource(write_wav(tmp_path / "in.wav", alsa.signal(1.0)), speed=1.0)
    rig = rigs(rig_config(tmp_path), source, probe_interval=0.1)
    assert rig.state() == "not_set_up"
    keystore.init("dr.rivera", "correct horse battery staple")
    wait_for(lambda: rig.state() == "idle" and rig.led() == "idle", "the idle heartbeat")


def test_too_little_free_space_refuses_to_start(tmp_path, rigs, recovery_key):
    source = WavFileSource(write_wav(tmp_path / "in.wav", alsa.signal(1.0)), speed=1.0)
    rig = rigs(rig_config(tmp_path, recorder={"min_free_mb": 1_000_000}), source)
    status = rig.recorder.snapshot()
    assert status["state"] == "idle" and status["disk_low"] is True
    assert "disk nearly full" in status["error"] and rig.led() == "disk_low"
    refused = rig.cmd("start")
    assert refused["ok"] is False
    assert "not enough free space to record" in refused["error"]
    assert "1000000 MB needed" in refused["error"]
    assert rig.storage.count_sessions() == 0
    assert rig.led() == "disk_low"  # back to the double blink after the refusal flash


def test_stops_cleanly_before_the_disk_fills(tmp_path, rigs, recovery_key, keystore):
    signal = alsa.signal(20.0, seed=9)
    source = WavFileSource(write_wav(tmp_path / "in.wav", signal), speed=20.0)
    cfg = rig_config(tmp_path, recorder={"min_free_mb": 100, "stop_free_mb": 50})
    recording = cfg.paths.data_dir / "recordings" / "000001.wav.age"

    def fake_disk() -> int:
        # The disk "fills" once the recording passes 300 kB.
        written = recording.stat().st_size if recording.exists() else 0
        return 10_000 * MB if written < 300_000 else 40 * MB

    rig = rigs(cfg, source, free_bytes=fake_disk)
    assert rig.cmd("start")["ok"]
    wait_for(lambda: rig.state() == "idle", "the disk guard to stop the recording")
    session = rig.storage.get_session(1)
    assert session.state == State.RECORDED
    assert "free space fell below 50 MB" in session.error
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())
    assert 0 < len(pcm) < len(signal)
    assert np.array_equal(pcm, signal[: len(pcm)])
    assert rig.led() == "disk_low"


def test_stops_at_the_maximum_session_length(tmp_path, rigs, recovery_key, keystore):
    signal = alsa.signal(65.0, seed=2)
    source = WavFileSource(write_wav(tmp_path / "in.wav", signal), speed=None)
    rig = rigs(rig_config(tmp_path, recorder={"max_session_minutes": 1}), source)
    assert rig.cmd("start")["ok"]
    wait_for(lambda: rig.state() == "idle", "the length guard")
    session = rig.storage.get_session(1)
    assert session.state == State.RECORDED and "maximum session length (1 min" in session.error
    assert session.duration_s == 60.0  # cut at exactly the limit
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())
    assert np.array_equal(pcm, signal[: len(pcm)])


class UnpluggableMicrophone(WavFileSource):
    """A WAV 'microphone' whose cable the test can pull and plug back in."""

    def __init__(self, path: Path, fail_after_blocks: int):
        super().__init__(path, speed=None)
        self.fail_after_blocks = fail_after_blocks
        self.plugged = threading.Event()
        self.plugged.set()

    def probe(self) -> None:
        if not self.plugged.is_set():
            raise AudioDeviceError("microphone 'USB' not found; plug it in")
        super().probe()

    def read_blocks(self, wav):
        for count, block in enumerate(super().read_blocks(wav)):
            if count == self.fail_after_blocks:
                self.plugged.clear()
                raise OSError(19, "No such device")
            yield block


def test_lost_microphone_keeps_the_recording_and_recovers(tmp_path, rigs, recovery_key,
                                                          keystore):
    signal = alsa.signal(10.0, seed=3)
    source = UnpluggableMicrophone(write_wav(tmp_path / "in.wav", signal), fail_after_blocks=40)
    rig = rigs(rig_config(tmp_path), source, probe_interval=0.05)
    assert rig.cmd("start")["ok"]
    wait_for(lambda: rig.state() == "error" and rig.led() == "error", "the error light")
    assert "No such device" in rig.recorder.snapshot()["error"]
    session = rig.storage.get_session(1)
    assert session.state == State.RECORDED
    assert session.error.startswith("Microphone lost after 00:00:04")
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())
    assert np.array_equal(pcm, signal[: 40 * 1600])  # everything before the failure

    refused = rig.cmd("start")  # still unplugged
    assert refused["ok"] is False and "not found" in refused["error"]
    assert rig.storage.count_sessions() == 1

    source.fail_after_blocks = 10**9
    source.plugged.set()  # plugged back in
    wait_for(lambda: rig.state() == "idle" and rig.led() == "idle", "recovery to idle")
    assert rig.recorder.snapshot()["error"] is None
    assert rig.cmd("start")["ok"]


def test_missing_microphone_at_start_up_shows_the_error(tmp_path, rigs, recovery_key,
                                                        monkeypatch):
    monkeypatch.setenv("HOME", str(alsa.make_device(tmp_path, alsa.signal(1.0))))
    source = PyAudioSource("Blue Yeti", AudioFormat())
    rig = rigs(rig_config(tmp_path), source, probe_interval=30.0)
    status = rig.recorder.snapshot()
    assert status["state"] == "error" and "'Blue Yeti' not found" in status["error"]
    assert rig.led() == "error"
    assert rig.cmd("start")["ok"] is False


# --- crash recovery ---------------------------------------------------------------------------


def crashed_recording(storage: Storage, keys: KeyStore, rescue: RescueKeys,
                      signal: np.ndarray, keep_rescue_key: bool = True):
    """A session left ``recording`` with a stream that lost its end, as after a crash."""
    session = storage.create_session(1, 16000)
    recipients = [keys.recipient()]
    extra = rescue.create(session.id)
    recipients.append(extra)
    with open(session.audio_path, "xb") as out:
        writer = age.StreamWriter(out, recipients, fsync_each_chunk=True)
        writer.write(wav_header(AudioFormat()) + signal.tobytes())
        writer.abort()  # no final chunk: exactly what a SIGKILL leaves
    if not keep_rescue_key:
        rescue.discard(session.id)  # a power cut empties the RAM-only runtime directory
    return session


def test_recovery_completes_a_crashed_stream(tmp_path, storage, keystore, recovery_key, audit):
    signal = alsa.signal(7.0, seed=21)
    rescue = RescueKeys(tmp_path / "run" / "rescue")
    session = crashed_recording(storage, keystore, rescue, signal)
    with pytest.raises(TruncatedStreamError):
        age.decrypt(session.audio_path.read_bytes(), [keystore.identity()])

    (result,) = recover_sessions(storage, keystore, rescue, audit)

    after = storage.get_session(session.id)
    assert after.state == State.INTERRUPTED and result.completed
    complete_chunks = (WAV_HEADER_BYTES + signal.nbytes) // age.CHUNK_SIZE
    expected_s = (complete_chunks * age.CHUNK_SIZE - WAV_HEADER_BYTES) / 32000
    assert after.recovered_s == after.duration_s == pytest.approx(expected_s, abs=0.01)
    assert "recovered" in after.error
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())
    assert np.array_equal(pcm, signal[: len(pcm)])
    assert len(pcm) / 16000 == pytest.approx(after.recovered_s, abs=0.01)
    assert rescue.session_ids() == []  # the throw-away key is destroyed
    assert ("recording.recovered", session.id) in audit_actions(storage)
    # Re-written to the practice key alone: the rescue key's stanza is gone.
    header = session.audio_path.read_bytes()[:600]
    assert header.count(b"\n-> X25519 ") == 1


def test_recovery_after_power_loss_leaves_the_stream_for_salvage(
        tmp_path, storage, keystore, recovery_key, audit):
    signal = alsa.signal(5.0, seed=22)
    rescue = RescueKeys(tmp_path / "run" / "rescue")
    session = crashed_recording(storage, keystore, rescue, signal, keep_rescue_key=False)
    before = session.audio_path.read_bytes()

    (result,) = recover_sessions(storage, keystore, rescue, audit)

    after = storage.get_session(session.id)
    assert after.state == State.INTERRUPTED and not result.completed
    assert session.audio_path.read_bytes() == before  # untouched: nothing to decrypt it with
    assert "overnight job salvages it" in after.error
    # The estimate from the file size is what the salvage reader really recovers.
    with age.StreamReader(session.audio_path, [keystore.identity()], salvage=True) as reader:
        salvaged = reader.read()
    assert after.recovered_s == pytest.approx((len(salvaged) - WAV_HEADER_BYTES) / 32000,
                                              abs=0.01)
    assert np.array_equal(np.frombuffer(salvaged[WAV_HEADER_BYTES:], "<i2"),
                          signal[: (len(salvaged) - WAV_HEADER_BYTES) // 2])


def test_recovery_of_a_session_with_no_audio(tmp_path, storage, keystore, recovery_key, audit):
    rescue = RescueKeys(tmp_path / "run" / "rescue")
    empty = storage.create_session(1, 16000)
    empty.audio_path.write_bytes(b"")
    stale = storage.recordings_dir / ".000009.wav.age.abc.recovering"
    stale.write_bytes(b"half a re-write")
    results = recover_sessions(storage, keystore, rescue, audit)
    missing = storage.create_session(1, 16000)  # one recording at a time: after the first
    results += recover_sessions(storage, keystore, rescue, audit)
    assert [(r.session_id, r.recovered_s) for r in results] == [(empty.id, 0), (missing.id, 0)]
    for session_id in (empty.id, missing.id):
        after = storage.get_session(session_id)
        assert after.state == State.INTERRUPTED and "no audio had reached the disk" in after.error
    assert not stale.exists()
    assert recover_sessions(storage, keystore, rescue, audit) == []  # idempotent


# --- the daemon as a process: systemd, SIGTERM, SIGKILL ---------------------------------------


def write_config_file(tmp_path: Path, **audio) -> Path:
    path = tmp_path / "holdnote.toml"
    lines = [
        "[paths]",
        f'data_dir = "{tmp_path / "data"}"',
        f'runtime_dir = "{tmp_path / "run"}"',
        f'recorder_socket = "{tmp_path / "run" / "recorder.sock"}"',
        "[audio]",
        f'device = "{alsa.PCM_NAME}"',
        *(f"{k} = {v}" for k, v in audio.items()),
        "[security]",
        "scrypt_work_factor = 10",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class DaemonProcess:
    """``python -m appliance.app.cli recorder`` with HOME at the ALSA test device."""

    def __init__(self, tmp_path: Path, home: Path, config: Path, name: str = "daemon", **env):
        self.log = tmp_path / f"{name}.log"
        self.socket = tmp_path / "run" / "recorder.sock"
        self.config = config
        self.env = alsa.environ(home, **env)
        for name in SYSTEMD_VARIABLES - set(env):  # if pytest itself runs under systemd
            self.env.pop(name, None)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "appliance.app.cli", "--config", str(config), "recorder"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])

    def wait_ready(self) -> dict:
        def ready():
            assert self.proc.poll() is None, f"daemon exited:\n{self.log.read_text()}"
            return control.send(self.socket, {"cmd": "status"}, timeout=2)
        return wait_for(ready, "the daemon to answer", timeout=60)

    def send(self, cmd: str) -> dict:
        return control.send(self.socket, {"cmd": cmd}, timeout=control.COMMAND_TIMEOUT)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "appliance.app.cli", "--config", str(self.config),
                               *args], env=self.env, capture_output=True, text=True, timeout=60)

    def finish(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


@pytest.fixture
def processes():
    started: list[DaemonProcess] = []

    def start(*args, **kwargs) -> DaemonProcess:
        process = DaemonProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(10)


@pytest.mark.slow
def test_daemon_talks_to_systemd_and_serves_holdnote_record(tmp_path, processes, recovery_key):
    home = alsa.make_device(tmp_path, alsa.signal(3.0))
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(30)
    messages: list[str] = []

    def expect(prefix: str) -> str:
        while True:
            message = notify.recv(4096).decode()
            messages.append(message)
            for line in message.splitlines():
                if line.startswith(prefix):
                    return line

    try:
        # No GPIO here: the daemon must carry on without buttons and light.
        daemon = processes(tmp_path, home, write_config_file(tmp_path), NOTIFY_SOCKET=str(
            notify_path), WATCHDOG_USEC="1000000", GPIOZERO_PIN_FACTORY="no-such-gpio")
        assert expect("READY=1")
        assert any("STATUS=Idle, " in m and " h of space" in m for m in messages)
        assert expect("WATCHDOG=1")
        assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600

        started = daemon.cli("record", "start")
        assert started.returncode == 0, started.stderr
        assert expect("STATUS=Recording 00:00:0")
        assert '"state": "recording"' in daemon.cli("record", "status", "--json").stdout
        stopped = daemon.cli("record", "stop", "--json")
        assert stopped.returncode == 0 and '"state": "idle"' in stopped.stdout
        assert expect("STATUS=Idle")
        assert expect("WATCHDOG=1")  # still alive and pinging
        assert daemon.finish() == 0
        assert expect("STOPPING=1")
    finally:
        notify.close()
    log = daemon.log.read_text()
    assert "no GPIO available" in log and "holdnote record start|stop|mark" in log
    assert not daemon.socket.exists()
    unavailable = daemon.cli("record", "status")
    assert unavailable.returncode == 1 and "recorder is not running" in unavailable.stderr


@pytest.mark.slow
def test_sigterm_mid_recording_leaves_a_complete_stream(tmp_path, processes, recovery_key,
                                                        keystore):
    signal_in = alsa.signal(6.0, seed=31)
    home = alsa.make_device(tmp_path, signal_in)
    daemon = processes(tmp_path, home, write_config_file(tmp_path), GPIOZERO_PIN_FACTORY="mock")
    daemon.wait_ready()
    assert daemon.send("start")["ok"]
    wait_for(lambda: daemon.send("status")["elapsed_s"] >= 3.0, "3 s of audio")
    assert daemon.finish(signal.SIGTERM) == 0, daemon.log.read_text()

    session = Storage(tmp_path / "data").get_session(1)
    assert session.state == State.RECORDED and session.duration_s >= 3.0
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())  # the stock tool accepts it: the final chunk is there
    assert len(pcm) / 16000 == pytest.approx(session.duration_s, abs=0.01)
    n = min(len(pcm), len(signal_in))
    assert np.array_equal(pcm[:n], signal_in[:n])


@pytest.mark.slow
def test_sigkill_mid_recording_loses_at_most_2_5_seconds(tmp_path, processes, recovery_key,
                                                         keystore):
    signal_in = alsa.signal(20.0, seed=41)
    home = alsa.make_device(tmp_path, signal_in)
    config = write_config_file(tmp_path)
    daemon = processes(tmp_path, home, config, name="first")
    daemon.wait_ready()
    assert daemon.send("start")["ok"]
    status = wait_for(lambda: (s := daemon.send("status"))["written_s"] >= 5.0 and s,
                      "5 s of audio written")
    daemon.proc.kill()  # SIGKILL: no clean-up of any kind
    daemon.proc.wait(10)
    written_before_kill = status["written_s"]  # a lower bound: writing went on until the kill
    storage = Storage(tmp_path / "data")
    assert storage.get_session(1).state == State.RECORDING

    again = processes(tmp_path, home, config, name="second")
    after_restart = again.wait_ready()
    assert after_restart["state"] == "idle"
    session = storage.get_session(1)
    assert session.state == State.INTERRUPTED
    assert written_before_kill - session.recovered_s <= 2.5  # one 64 KiB chunk is 2.05 s
    pcm = pcm_of(decrypt_with_age_cli(session.audio_path, keystore.identity(), tmp_path),
                 AudioFormat())  # re-written as a complete stream
    assert len(pcm) / 16000 == pytest.approx(session.recovered_s, abs=0.01)
    assert np.array_equal(pcm, signal_in[: len(pcm)])
    assert ("recording.recovered", 1) in audit_actions(storage)
    assert again.send("start")["session_id"] == 2  # and it records again
    assert again.finish() == 0
    assert os.listdir(tmp_path / "run" / "rescue") == []
