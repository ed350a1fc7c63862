"""The data disk filling between two free-space checks, on a real (small) file system.

The recorder's free-space guard stops a recording cleanly while there is room;
these tests fill a real tmpfs to the last byte *between two checks* (the probe is
held at its last reading while the test fills the disk), so the recorder finds
out the way it would on the device: a write, the final chunk or the fsync fails
with ENOSPC. Whatever fails, the session must end with what reached the disk,
say why, be in the audit log, and never leave two sessions ``recording``.

Mounting a tmpfs needs root; the suite runs as root in CI and these tests fail
there rather than skip if the mount does not work.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance import age
from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.errors import InvalidStateError
from appliance.recorder.buttons import ButtonPanel
from appliance.recorder.capture import WAV_HEADER_BYTES, WavFileSource
from appliance.recorder.daemon import RescueKeys, recover_sessions
from appliance.recorder.recovery import LEFT_OPEN_REASON, estimate_payload
from appliance.recorder.reserve import DISK_FULL, RESERVE_NAME
from appliance.store.db import State, Storage
from tests.conftest import PASSPHRASE, USER, need_tool
from tests.recorder.test_daemon import (
    RECORD_PIN,
    Rig,
    decrypt_with_age_cli,
    rig_config,
    wait_for,
    write_wav,
)
from tests.support import alsa

DISK_MB = 64
RECORDER = {"min_free_mb": 50, "stop_free_mb": 20}  # the smallest the schema allows


# --- the small disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 64 MiB tmpfs mounted where the test configuration keeps its data directory."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the suite as root)")
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run([need_tool("mount"), "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0700",
                           "holdnote-test", str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"running as root but cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run([need_tool("umount"), "--lazy", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory`` to its last byte; the filler's path."""
    filler = directory / "filler.bin"
    with filler.open("wb", buffering=0) as out:
        for block in (1 << 20, 4096, 1):
            try:
                while True:
                    out.write(bytes(block))
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    assert shutil.disk_usage(directory).free == 0
    return filler


class HeldProbe:
    """The recorder's free-space probe; :meth:`hold` keeps returning the last reading.

    Holding it while the test fills the disk is "the disk filled between two
    checks": the guard that stops cleanly before the disk is full cannot see it.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.held: int | None = None

    def __call__(self) -> int:
        return self.held if self.held is not None else shutil.disk_usage(self.directory).free

    def hold(self) -> None:
        self.held = self()

    def release(self) -> None:
        self.held = None


class Panel:
    """A recorder on the small disk with its record button on a mock pin."""

    def __init__(self, tmp_path: Path, disk: Path, speed: float, probe_interval: float = 0.05):
        self.signal = alsa.signal(60.0, seed=31)
        self.cfg = rig_config(tmp_path, recorder=RECORDER)
        storage = Storage(self.cfg.paths.data_dir)
        self.keys = KeyStore(storage, self.cfg.paths.runtime_dir, work_factor=10)
        self.keys.init(USER, PASSPHRASE)
        self.probe = HeldProbe(disk)
        source = WavFileSource(write_wav(tmp_path / "in.wav", self.signal), speed=speed)
        self.rig = Rig(self.cfg, source, free_bytes=self.probe, probe_interval=probe_interval)
        self.storage = self.rig.storage
        self.factory: MockFactory = self.rig.factory
        self.buttons = ButtonPanel(self.cfg.gpio, lambda: self.rig.recorder.state,
                                   lambda cmd: self.rig.recorder.submit(cmd, "button"),
                                   pin_factory=self.factory)

    def press(self) -> None:
        """Press and release the record button; returns once the recorder has acted on it."""
        self.factory.pin(RECORD_PIN).drive_low()
        self.factory.pin(RECORD_PIN).drive_high()
        self.rig.cmd("status")  # requests are served in order: the press came first

    def recording_ids(self) -> list[int]:
        return [s.id for s in self.storage.list_sessions(states=(State.RECORDING,))]

    def stop_entries(self) -> list[tuple[int | None, str | None]]:
        return [(e.session_id, e.detail) for e in AuditLog(self.storage).entries(newest_first=False)
                if e.action == "recording.stop"]

    def close(self) -> None:
        self.buttons.close()
        self.rig.close()


@pytest.fixture
def panels(tmp_path, small_disk):
    made: list[Panel] = []

    def make(speed: float, probe_interval: float = 0.05) -> Panel:
        made.append(Panel(tmp_path, small_disk, speed, probe_interval))
        return made[-1]

    yield make
    for panel in made:
        panel.close()


def record_until_disk_full(panel: Panel, seconds: float, keep_reserve: bool = True) -> int:
    """Press record, let ``seconds`` reach the disk, then fill it; the bytes of audio on disk."""
    panel.press()
    wait_for(lambda: panel.rig.recorder.snapshot()["written_s"] >= seconds, "audio on disk")
    on_disk = estimate_payload(panel.storage.get_session(1).audio_path)
    if not keep_reserve:
        (panel.cfg.paths.data_dir / RESERVE_NAME).unlink(missing_ok=True)  # none before the fix
    panel.probe.hold()
    fill(panel.cfg.paths.data_dir)
    return on_disk


def assert_ended_by_the_full_disk(panel: Panel, on_disk: int) -> bytes:
    """Session 1 ended with what reached the disk, said why, and was audited; its audio."""
    session = panel.storage.get_session(1)
    assert session.state == State.INTERRUPTED
    assert session.end_reason == DISK_FULL
    assert session.error.startswith(f"Recording interrupted: {DISK_FULL}")
    assert panel.stop_entries() == [(1, DISK_FULL)]
    # Every complete chunk decrypts with the practice key through the salvage reader.
    with age.StreamReader(session.audio_path, [panel.keys.identity()], salvage=True) as reader:
        salvaged = reader.read()
    assert len(salvaged) >= on_disk > WAV_HEADER_BYTES
    pcm = np.frombuffer(salvaged[WAV_HEADER_BYTES:], "<i2")
    assert np.array_equal(pcm, panel.signal[: len(pcm)])
    assert session.duration_s == pytest.approx(len(pcm) / 16000, abs=0.01)
    return salvaged


def assert_one_recording_after_space_is_freed(panel: Panel, filler: Path) -> None:
    filler.unlink()
    panel.probe.release()
    wait_for(lambda: panel.rig.state() == "idle", "the recorder to be ready again")
    panel.press()
    assert panel.rig.state() == "recording"
    assert panel.recording_ids() == [2]
    assert panel.storage.get_session(1).state == State.INTERRUPTED


# --- the tests ----------------------------------------------------------------------------------


def test_disk_filling_mid_recording_ends_the_session_with_what_was_written(panels, tmp_path):
    panel = panels(speed=4.0)  # a chunk every half second: the next write meets the full disk
    on_disk = record_until_disk_full(panel, seconds=3.0)
    filler = panel.cfg.paths.data_dir / "filler.bin"

    wait_for(lambda: panel.rig.state() == "error", "the recorder to notice the full disk")
    status = panel.rig.recorder.snapshot()
    assert status["error"].startswith(f"{DISK_FULL}: session 1 was ended with")
    assert status["message"].startswith("Error: ") and panel.rig.led() == "error"
    salvaged = assert_ended_by_the_full_disk(panel, on_disk)

    panel.probe.release()
    panel.press()  # still full: refused, and no second session
    assert panel.storage.count_sessions() == 1 and panel.recording_ids() == []
    assert panel.rig.state() == "error"

    assert_one_recording_after_space_is_freed(panel, filler)
    panel.press()
    assert panel.rig.state() == "idle"  # the second recording stopped

    # The recovery path (the next start of the daemon) completes the first stream:
    # the stock age tool then reads it whole, and it is what the salvage reader saw.
    rescue = RescueKeys(panel.cfg.paths.runtime_dir / "rescue")
    (result,) = recover_sessions(panel.storage, panel.keys, rescue, AuditLog(panel.storage))
    assert result.session_id == 1 and result.completed
    whole = decrypt_with_age_cli(panel.storage.get_session(1).audio_path,
                                 panel.keys.identity(), tmp_path)
    assert whole == salvaged
    assert panel.storage.get_session(1).end_reason == DISK_FULL


def test_stop_after_the_disk_filled_still_closes_the_session(panels):
    # The report: the final chunk cannot be written, closing the stream fails
    # with ENOSPC, and the session used to stay "recording" while the recorder
    # went idle and recorded a session 2 beside it.
    panel = panels(speed=1.0)
    on_disk = record_until_disk_full(panel, seconds=2.5)
    filler = panel.cfg.paths.data_dir / "filler.bin"

    panel.press()  # stop
    wait_for(lambda: panel.rig.state() == "error", "the recording to end")
    assert_ended_by_the_full_disk(panel, on_disk)
    assert panel.rig.led() == "error"
    assert_one_recording_after_space_is_freed(panel, filler)


@pytest.mark.parametrize("closed_by", ["the next press", "the recorder retrying"])
def test_a_session_that_cannot_be_closed_is_closed_before_the_next(panels, closed_by):
    # Without the reserve the database cannot record the end either (SQLite
    # cannot even read on the full disk): the session stays open until there is
    # room, and then it is closed before anything starts beside it.
    retrying = closed_by == "the recorder retrying"
    panel = panels(speed=4.0, probe_interval=0.05 if retrying else 600.0)
    record_until_disk_full(panel, seconds=3.0, keep_reserve=False)
    filler = panel.cfg.paths.data_dir / "filler.bin"

    wait_for(lambda: panel.rig.state() == "error", "the recorder to notice the full disk")
    assert "session 1 could not be closed" in panel.rig.recorder.snapshot()["error"]
    assert panel.rig.led() == "error"

    filler.unlink()  # room again (the probe still reads as before: nothing else changed)
    if retrying:
        wait_for(lambda: panel.rig.state() == "idle", "the open session to be closed")
    panel.press()
    assert panel.rig.state() == "recording"
    assert panel.recording_ids() == [2]
    session = panel.storage.get_session(1)
    assert session.state == State.INTERRUPTED and session.end_reason == DISK_FULL
    assert panel.stop_entries() == [(1, DISK_FULL)]


def test_a_session_left_recording_is_closed_before_the_next_starts(tmp_path):
    panel = Panel(tmp_path, tmp_path / "data", speed=1.0)  # any disk will do
    try:
        left = panel.storage.create_session(1, 16000)  # open in the database, not recording
        panel.press()
        assert panel.rig.state() == "recording"
        assert panel.recording_ids() == [left.id + 1]
        closed = panel.storage.get_session(left.id)
        assert closed.state == State.INTERRUPTED and closed.end_reason == LEFT_OPEN_REASON
        assert closed.error.startswith(f"Recording interrupted: {LEFT_OPEN_REASON}")
    finally:
        panel.close()


def test_the_storage_refuses_a_second_recording_session(storage):
    first = storage.create_session()
    with pytest.raises(InvalidStateError, match=f"session {first.id} is still recording"):
        storage.create_session()
    assert storage.count_sessions() == 1
    storage.transition(first.id, State.RECORDED)
    assert storage.create_session().state == State.RECORDING
