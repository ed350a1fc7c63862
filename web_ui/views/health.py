"""What needs IT's attention: the reasons ``/healthz`` answers 503, listed on the Device page too.

One list, built from probes that never raise, so the two places cannot
disagree. Each problem says what is wrong and what to do; none names a client.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance import service
from appliance.access.audit import AuditLog
from appliance.config import Config
from appliance.drafting import runtime
from appliance.errors import DraftingError, SpeakerModelError
from appliance.store import backups
from appliance.store.db import State, Storage
from appliance.transcription.voice import model as voice_model
from web_ui.views import status
from web_ui.views.damage import current_damage

TRANSCRIBE_UNIT = "holdnote-transcribe.service"
# Less than this many hours of recording left is a problem: about a day of sessions.
DISK_LOW_HOURS = 4.0
CLOCK_CACHE_S = 30.0
DOWN_STATES = ("unavailable", "error")


@dataclass(frozen=True)
class Problem:
    """One thing that needs IT: ``check`` names it for machines, ``message`` for people."""

    check: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The form /healthz lists."""
        return {"check": self.check, "message": self.message}


class ClockProbe:
    """:func:`appliance.service.clock_synchronised`, asked at most every 30 s."""

    def __init__(self):
        self._cached: tuple[float, bool | None] | None = None
        self._lock = threading.Lock()

    def synchronised(self) -> bool | None:
        """True, False, or None where this machine cannot tell."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CLOCK_CACHE_S:
                return self._cached[1]
        answer = service.clock_synchronised()
        with self._lock:
            self._cached = (time.monotonic(), answer)
        return answer


SERVICES = status.ServiceProbe()
CLOCK = ClockProbe()


def recorder_problem(recorder: dict) -> Problem | None:
    """The recorder daemon is not running, or reports an error."""
    state = str(recorder.get("state") or "unavailable")
    if state == "unavailable":
        return Problem("recorder", "The recorder is not running, so nothing can be recorded: "
                       "restart it (systemctl restart holdnote-recorder) and check its log "
                       "(journalctl -u holdnote-recorder).")
    if state == "error":
        reason = str(recorder.get("error") or "no reason given")
        return Problem("recorder", f"The recorder reports an error: {reason}.")
    return None


def night_job_problems(storage: Storage, units: list[status.ServiceState]) -> list[Problem]:
    """The overnight job ended in failure, or left sessions it could not transcribe."""
    found = []
    if any(u.unit == TRANSCRIBE_UNIT and u.state == "failed" for u in units):
        found.append(Problem("night_job", "The last overnight job failed: see "
                             "journalctl -u holdnote-transcribe."))
    failed = storage.count_sessions((State.FAILED,))
    if failed:
        found.append(Problem("night_job", f"{failed} session{'s' if failed != 1 else ''} "
                             "could not be transcribed: the Device page lists them with the reason."))
    return found


def disk_problem(cfg: Config, free_bytes: int) -> Problem | None:
    """Fewer than :data:`DISK_LOW_HOURS` of recording fit on the data disk."""
    hours = status.free_hours(cfg, free_bytes)
    if hours >= DISK_LOW_HOURS:
        return None
    return Problem("disk", f"The data disk is nearly full: {hours:.1f} h of recording fit "
                   f"({free_bytes / 1e9:.1f} GB free). Export and delete old sessions, "
                   "or use a larger disk.")


def damage_problems(storage: Storage) -> list[Problem]:
    """Stored values that no longer decrypt (found by the pages that read them)."""
    return [Problem("damaged", value.describe() + " Restore it from a backup.")
            for value in current_damage(storage)]


def clock_problem(synchronised: bool | None) -> Problem | None:
    """The clock has not been set from the network (unknown is not reported as a problem)."""
    if synchronised is not False:
        return None
    return Problem("clock", "The clock is not synchronised with a time server: signatures "
                   "and the overnight job use it, and this device has no battery clock. "
                   "Check the network and timedatectl timesync-status.")


def drafting_problems(cfg: Config, storage: Storage) -> list[Problem]:
    """The drafting model cannot be used, or notes could not be drafted.

    Only the file is checked (it exists, is whole, is GGUF): loading a model
    takes seconds and gigabytes, which a health check must not.
    """
    found = []
    try:
        runtime.resolve_model(cfg)
    except DraftingError as error:
        found.append(Problem("drafting", f"The note-drafting model cannot be used: {error}. "
                             "Sessions keep their transcripts; their notes wait."))
    failed = storage.count_drafts_failed()
    if failed:
        found.append(Problem("drafting", f"{failed} note{'s' if failed != 1 else ''} could not "
                             "be drafted: each session says why."))
    return found


def speaker_model_problem() -> Problem | None:
    """The speaker-embedding model is missing or damaged: mono sessions lose their speakers."""
    try:
        voice_model.check_file()
    except SpeakerModelError as error:
        return Problem("speakers", f"Speakers cannot be told apart in one-microphone "
                       f"recordings: {error}. Transcripts are still made, unlabelled.")
    return None


def backup_problem(cfg: Config, storage: Storage) -> Problem | None:
    """Backups are configured but the newest verified one is older than ``backup.max_age_hours``.

    With none verified yet, the device gets that long from its first audit entry (its
    setup), so a new device, or one restored onto a new card, is not reported before its
    first night; a device set up long ago that gets a target now is, until its first
    backup: nothing of its data is on a backup yet.
    """
    if cfg.backup.target_dir is None:
        return None
    limit = timedelta(hours=cfg.backup.max_age_hours)
    now = storage.now()
    newest = backups.newest_verified(storage)
    if newest is not None and now - newest.created_at <= limit:
        return None
    if newest is None:
        since = in_use_since(storage)
        if since is None or now - since <= limit:
            return None
        stale = (f"No verified backup exists, and this device has been in use for more than "
                 f"{cfg.backup.max_age_hours} h (backup.max_age_hours)")
    else:
        stale = (f"The newest verified backup is {_hours(now - newest.created_at)} old "
                 f"(backup.max_age_hours is {cfg.backup.max_age_hours})")
    return Problem("backup", f"{stale}: {_last_attempt(storage, newest)} Check that "
                   f"{cfg.backup.target_dir} is mounted and writable by holdnote, then run "
                   "sudo -u holdnote holdnote backup now (README: Backups).")


def in_use_since(storage: Storage) -> datetime | None:
    """When this device's history begins (its first audit entry), or None before setup."""
    first = AuditLog(storage).entries(limit=1, newest_first=False)
    return datetime.fromisoformat(first[0].ts) if first else None


def _hours(age: timedelta) -> str:
    return f"{age.total_seconds() / 3600:.0f} h"


def _last_attempt(storage: Storage, newest: backups.BackupRecord | None) -> str:
    """What became of the attempts since the newest verified backup, in one sentence."""
    latest = backups.recent(storage, limit=1)
    if latest and latest[0].error and (newest is None or latest[0].id != newest.id):
        return f"the last attempt failed: {latest[0].error.rstrip('.')}."
    return ("no backup has been made and verified since (the overnight job starts one: see "
            "journalctl -u holdnote-backup).")


def problems(cfg: Config, storage: Storage, recorder: dict, free_bytes: int) -> list[Problem]:
    """Everything that needs IT now, most urgent first."""
    found = [recorder_problem(recorder), disk_problem(cfg, free_bytes),
             *night_job_problems(storage, SERVICES.states()), *damage_problems(storage),
             *drafting_problems(cfg, storage), speaker_model_problem(),
             clock_problem(CLOCK.synchronised()),
             backup_problem(cfg, storage)]
    return [problem for problem in found if problem is not None]
