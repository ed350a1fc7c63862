"""What the device page and /healthz report: recorder, disk, queue, services, errors.

Each probe degrades to "unknown" rather than failing the page: the device
page is where IT looks when something is wrong.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata

from appliance.config import Config
from appliance.errors import HoldnoteError
from appliance.recorder import control
from appliance.store.db import PENDING_STATES, State, Storage

log = logging.getLogger(__name__)

UNITS = ("holdnote-recorder.service", "holdnote-web.service", "holdnote-transcribe.timer",
         "holdnote-transcribe.service", "holdnote-backup.service")
SERVICE_CACHE_S = 15.0


def version() -> str:
    """The installed Holdnote version."""
    try:
        return metadata.version("holdnote")
    except metadata.PackageNotFoundError:
        return "unknown"


def recorder_status(cfg: Config, timeout: float = 2.0) -> dict:
    """The recorder daemon's status reply, or ``state: unavailable`` with the reason."""
    return control.recorder_status(cfg.paths.recorder_socket, timeout=timeout)


def recorder_command(cfg: Config, command: str) -> dict:
    """Send start, stop or mark to the recorder; the reply (``ok`` false with a reason)."""
    try:
        reply = control.send(cfg.paths.recorder_socket, {"cmd": command})
    except (HoldnoteError, OSError) as error:
        return {"ok": False, "error": str(error)}
    return reply if isinstance(reply, dict) else {"ok": False, "error": "unexpected reply"}


def bytes_per_hour(cfg: Config) -> int:
    """Audio bytes one hour of recording takes (16-bit samples)."""
    return cfg.audio.sample_rate * 2 * cfg.audio.channels * 3600


def free_hours(cfg: Config, free_bytes: int) -> float:
    """Hours of audio that fit in ``free_bytes``, keeping the recorder's stop margin."""
    usable = max(0, free_bytes - cfg.recorder.stop_free_mb * 1024 * 1024)
    return usable / bytes_per_hour(cfg)


def next_run(night_start: str, now: datetime) -> datetime:
    """The next local time the overnight job starts."""
    local_now = now.astimezone()
    hour, minute = (int(part) for part in night_start.split(":"))
    start = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return start if start > local_now else start + timedelta(days=1)


def model_name(cfg: Config) -> str:
    """The configured Whisper model, as a person would name it."""
    if cfg.transcription.model_dir:
        return str(cfg.transcription.model_dir)
    return cfg.transcription.model


@dataclass(frozen=True)
class ServiceState:
    """One systemd unit's state as ``systemctl is-active`` reports it."""

    unit: str
    state: str


class ServiceProbe:
    """``systemctl is-active`` for the Holdnote units, cached for a few seconds."""

    def __init__(self):
        self._cached: tuple[float, list[ServiceState]] | None = None
        self._lock = threading.Lock()

    def states(self) -> list[ServiceState]:
        """The units and their states ("unknown" where systemd cannot be asked)."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < SERVICE_CACHE_S:
                return self._cached[1]
        states = self._probe()
        with self._lock:
            self._cached = (time.monotonic(), states)
        return states

    @staticmethod
    def _probe() -> list[ServiceState]:
        systemctl = shutil.which("systemctl")
        if systemctl is None:
            return [ServiceState(u, "unknown") for u in UNITS]
        try:
            done = subprocess.run([systemctl, "is-active", *UNITS], capture_output=True,
                                  text=True, timeout=3, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.debug("systemctl failed: %s", error)
            return [ServiceState(u, "unknown") for u in UNITS]
        answers = done.stdout.split()
        if len(answers) != len(UNITS):  # no systemd here (a container or a laptop)
            return [ServiceState(u, "unknown") for u in UNITS]
        return [ServiceState(u, a) for u, a in zip(UNITS, answers, strict=True)]


def waiting_sessions(storage: Storage) -> int:
    """Sessions whose audio still waits for the overnight job."""
    return storage.count_sessions(PENDING_STATES)


def failed_sessions(storage: Storage, limit: int = 5) -> list:
    """The most recent sessions that need attention (their error says why)."""
    return storage.list_sessions(states=(State.FAILED,), limit=limit)


def journal_errors(now: datetime, limit: int = 8) -> list[tuple[datetime, str]]:
    """Recent error lines from the Holdnote services' journal (empty where there is none)."""
    try:
        from systemd import journal

        reader = journal.Reader()
        reader.add_match(SYSLOG_IDENTIFIER="holdnote")
        reader.log_level(journal.LOG_ERR)
        reader.seek_realtime(now - timedelta(days=1))
        lines = [(entry["__REALTIME_TIMESTAMP"], str(entry.get("MESSAGE", "")))
                 for entry in reader]
        reader.close()
    except Exception as error:  # noqa: BLE001 - journald absent or unreadable: the page still works
        log.debug("journal not readable: %s", error)
        return []
    return lines[-limit:][::-1]
