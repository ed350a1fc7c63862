"""The systemd units: they verify, they are sandboxed as documented, and they agree.

``systemd-analyze verify`` needs the ``ExecStart`` binary to exist, so the units are
checked in a scratch root: the real unit files and systemd's own units, with a stub
``/opt/holdnote/bin/holdnote``. The same root gives the offline security scores.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, need_tool

UNIT_DIR = REPO / "systemd"
SERVICES = ("holdnote-recorder.service", "holdnote-web.service", "holdnote-transcribe.service",
            "holdnote-draft.service", "holdnote-transcribe-now.service", "holdnote-backup.service")
UNITS = (*SERVICES, "holdnote-transcribe.timer", "holdnote-draft.path",
         "holdnote-transcribe-now.path")
# Exposure ceilings from the issue (0 = fully locked down, 10 = no sandbox).
EXPOSURE_LIMITS = {
    "holdnote-recorder.service": 3.5,
    "holdnote-web.service": 2.5,
    "holdnote-transcribe.service": 2.5,
    "holdnote-draft.service": 2.5,
    "holdnote-transcribe-now.service": 2.5,
    "holdnote-backup.service": 2.5,
}
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def directives(unit: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file (keys may repeat), comments dropped."""
    found: dict[str, list[str]] = {}
    for line in (UNIT_DIR / unit).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def last(unit: str, key: str) -> str | None:
    """The effective value of a key that does not accumulate (the last one wins)."""
    values = directives(unit).get(key)
    return values[-1] if values else None


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory) -> Path:
    """A scratch root with the units installed where install.sh puts them."""
    need_tool("systemd-analyze")
    if not SYSTEM_UNITS.is_dir():
        pytest.skip(f"{SYSTEM_UNITS} missing: systemd is not installed here")
    root = tmp_path_factory.mktemp("root")
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    stub = root / "opt/holdnote/bin/holdnote"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(UNIT_DIR / unit, target / unit)
    return root


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args, f"--root={root}"], capture_output=True,
                          text=True, timeout=120, check=False)


def test_units_verify_without_warnings(unit_root):
    done = analyze(unit_root, "verify", *UNITS)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "holdnote" in line]
    assert done.returncode == 0, done.stderr
    assert complaints == []


def test_timer_schedule_from_install_verifies(unit_root, tmp_path):
    """The drop-in install.sh writes from transcription.night_start is a valid schedule."""
    need_tool("bash")
    rendered = subprocess.run(
        ["bash", "-c", f"source {REPO / 'install.sh'}; timer_dropin 01:45"],
        capture_output=True, text=True, check=True,
    ).stdout
    dropin = unit_root / "etc/systemd/system/holdnote-transcribe.timer.d/schedule.conf"
    dropin.parent.mkdir(exist_ok=True)
    dropin.write_text(rendered)
    try:
        done = analyze(unit_root, "verify", "holdnote-transcribe.timer")
        assert done.returncode == 0 and "holdnote" not in done.stderr, done.stderr
    finally:
        dropin.unlink()
    calendar = re.search(r"^OnCalendar=(\S.*)$", rendered, re.M).group(1)
    normalized = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True,
                                text=True, check=True).stdout
    assert "Normalized form: *-*-* 01:45:00" in normalized


def exposure(root: Path, unit: str) -> float:
    """The overall exposure ``systemd-analyze security --offline=true`` gives a unit."""
    done = analyze(root, "security", "--offline=true", "--no-pager", unit)
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)",
                      done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure_within_limit(unit_root, unit):
    assert exposure(unit_root, unit) <= EXPOSURE_LIMITS[unit]


@pytest.mark.parametrize("unit", SERVICES)
def test_services_run_unprivileged_as_holdnote(unit):
    assert last(unit, "User") == "holdnote"
    assert last(unit, "NoNewPrivileges") == "yes"
    assert last(unit, "CapabilityBoundingSet") == ""
    assert last(unit, "ProtectSystem") == "strict"
    assert last(unit, "ProtectHome") == "yes"
    assert last(unit, "PrivateTmp") == "yes"
    # Only the data directory is writable (the runtime directory is added by systemd).
    assert directives(unit)["ReadWritePaths"] == ["/var/lib/holdnote"]
    assert last(unit, "SystemCallFilter") is not None


@pytest.mark.parametrize("unit", SERVICES)
def test_all_services_share_one_preserved_runtime_directory(unit):
    """The unlocked key and the recorder socket survive a restart of any one service."""
    assert last(unit, "RuntimeDirectory") == "holdnote"
    assert last(unit, "RuntimeDirectoryMode") == "0700"
    assert last(unit, "RuntimeDirectoryPreserve") == "yes"


@pytest.mark.parametrize("unit", ["holdnote-transcribe.service", "holdnote-recorder.service",
                                  "holdnote-draft.service", "holdnote-transcribe-now.service",
                                  "holdnote-backup.service"])
def test_recorder_and_transcriber_have_no_network(unit):
    """Audio and transcripts can never leave the device from these services."""
    assert last(unit, "PrivateNetwork") == "yes"
    assert last(unit, "IPAddressDeny") == "any"
    assert last(unit, "RestrictAddressFamilies") == "AF_UNIX"


def test_web_is_limited_to_private_networks():
    assert last("holdnote-web.service", "IPAddressDeny") == "any"
    allowed = set(" ".join(directives("holdnote-web.service")["IPAddressAllow"]).split())
    assert allowed == {"localhost", "link-local", "10.0.0.0/8", "172.16.0.0/12",
                       "192.168.0.0/16", "fc00::/7"}


def test_recorder_sees_only_sound_and_gpio_devices():
    unit = "holdnote-recorder.service"
    assert last(unit, "DevicePolicy") == "closed"
    devices = {value.split()[0] for value in directives(unit)["DeviceAllow"]}
    assert devices == {"char-alsa", "char-gpiochip", "/dev/gpiomem", "/dev/gpiomem0"}


def test_recorder_is_watched_and_restarts_with_a_limit():
    unit = "holdnote-recorder.service"
    assert last(unit, "Type") == "notify"
    assert int(last(unit, "WatchdogSec")) > 0
    assert last(unit, "Restart") == "on-failure"
    assert int(last(unit, "StartLimitBurst")) > 0 and int(last(unit, "StartLimitIntervalSec")) > 0


def test_transcriber_is_an_idle_priority_oneshot_started_by_a_persistent_timer():
    service = "holdnote-transcribe.service"
    assert last(service, "Type") == "oneshot"
    assert last(service, "Nice") == "19"
    assert last(service, "IOSchedulingClass") == "idle"
    assert "--overnight" in last(service, "ExecStart")
    assert last("holdnote-transcribe.timer", "Persistent") == "true"
    assert last("holdnote-transcribe.timer", "OnCalendar") == "*-*-* 00:30:00"


def test_default_timer_time_matches_the_default_config():
    from appliance.config import Config

    night = Config().transcription.night_start
    assert last("holdnote-transcribe.timer", "OnCalendar") == f"*-*-* {night}:00"


# --- drafting ---------------------------------------------------------------------------


def memory_bytes(value: str) -> int:
    """A MemoryMax= value ("3G", "3072M", "512K", bytes) in bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    if value[-1] in units:
        return int(value[:-1]) * units[value[-1]]
    return int(value)


def test_redraft_runs_at_idle_priority_with_bounded_memory():
    """A redraft runs while the clinician works: it may only take idle time, and the
    language model can never push the recorder out of memory."""
    service = "holdnote-draft.service"
    assert last(service, "Type") == "oneshot"
    assert last(service, "ExecStart") == "/opt/holdnote/bin/holdnote draft --queued"
    assert last(service, "Nice") == "19"
    assert last(service, "CPUSchedulingPolicy") == "idle"
    assert last(service, "IOSchedulingClass") == "idle"
    assert memory_bytes(last(service, "MemoryMax")) > 0
    assert int(last(service, "OOMScoreAdjust")) > 0
    assert last("holdnote-recorder.service", "OOMScoreAdjust") is None


def test_the_overnight_job_has_room_for_the_language_model():
    """The overnight job drafts with the same model after transcribing: its limit must
    not be below the one the redraft service needs."""
    draft = memory_bytes(last("holdnote-draft.service", "MemoryMax"))
    transcribe = last("holdnote-transcribe.service", "MemoryMax")
    assert transcribe is None or memory_bytes(transcribe) >= draft


def test_redraft_path_watches_the_request_in_the_shared_runtime_directory():
    """The web page touches <paths.runtime_dir>/draft.request; the path unit must watch
    exactly that file and start the redraft service."""
    from appliance.config import Config

    unit = "holdnote-draft.path"
    assert last(unit, "PathModified") == str(Config().paths.runtime_dir / "draft.request")
    assert last(unit, "Unit") == "holdnote-draft.service"
    assert last(unit, "WantedBy") == "paths.target"
    # The service shares that directory (and its key) with the other services.
    assert last("holdnote-draft.service", "RuntimeDirectory") == Config().paths.runtime_dir.name


def install_sh_array(name: str) -> list[str]:
    """The words of a ``readonly NAME=(...)`` array in install.sh."""
    need_tool("bash")
    done = subprocess.run(["bash", "-c", f'source {REPO / "install.sh"}; printf "%s\\n" "${{{name}[@]}}"'],
                          capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_install_sh_installs_every_unit_and_enables_the_triggers():
    """A unit file install.sh does not copy would never run on the appliance."""
    assert sorted(install_sh_array("UNITS")) == sorted(path.name for path in UNIT_DIR.iterdir())
    always_on = install_sh_array("ALWAYS_ON")
    assert {"holdnote-draft.path", "holdnote-transcribe.timer",
            "holdnote-transcribe-now.path"} <= set(always_on)
    # The triggered services run only when their timer or path unit starts them.
    assert not {"holdnote-draft.service", "holdnote-transcribe.service",
                "holdnote-transcribe-now.service"} & set(always_on)


# --- Transcribe now ------------------------------------------------------------------------


def test_transcribe_now_runs_the_queued_sessions_at_idle_priority_sandboxed_as_the_night_job():
    """The clinician is using the device while it runs: idle time only, and the sandbox
    and memory limit of the overnight job, which runs the same code."""
    service, night = "holdnote-transcribe-now.service", "holdnote-transcribe.service"
    assert last(service, "Type") == "oneshot"
    assert last(service, "ExecStart") == "/opt/holdnote/bin/holdnote transcribe --queued"
    assert last(service, "Nice") == "19"
    assert last(service, "CPUSchedulingPolicy") == "idle"
    assert last(service, "IOSchedulingClass") == "idle"
    # The night job alone starts the backup when it ends (a daytime job must not).
    sandbox = {key: values for key, values in directives(night).items()
               if key not in {"ExecStart", "CPUSchedulingPolicy", "Description", "OnSuccess",
                              "OnFailure"}}
    mine = directives(service)
    assert {key: mine.get(key) for key in sandbox} == sandbox


def test_transcribe_now_path_watches_the_request_the_web_page_touches():
    from appliance.config import Config
    from web_ui.views.transcribe_now import REQUEST_FILE

    unit = "holdnote-transcribe-now.path"
    assert last(unit, "PathModified") == str(Config().paths.runtime_dir / REQUEST_FILE)
    assert last(unit, "Unit") == "holdnote-transcribe-now.service"
    assert last(unit, "WantedBy") == "paths.target"


# --- backups ------------------------------------------------------------------------------

BACKUP = "holdnote-backup.service"


def test_the_backup_runs_when_the_overnight_job_ends_whatever_its_outcome():
    """Same chain as the night job, so the two never compete; a failed night still backs up."""
    night = "holdnote-transcribe.service"
    assert directives(night)["OnSuccess"] == [BACKUP]
    assert directives(night)["OnFailure"] == [BACKUP]
    assert (UNIT_DIR / BACKUP).is_file()
    # Started by the chain only: nothing enables it, and the daytime jobs never start it.
    assert "WantedBy" not in directives(BACKUP)
    assert BACKUP not in install_sh_array("ALWAYS_ON")
    for daytime in ("holdnote-transcribe-now.service", "holdnote-draft.service"):
        assert not {"OnSuccess", "OnFailure"} & set(directives(daytime))
    # Started by hand while the night job runs, it waits for the job to end.
    assert "holdnote-transcribe.service" in last(BACKUP, "After").split()


def test_the_backup_is_an_idle_priority_oneshot_that_does_nothing_unless_configured():
    assert last(BACKUP, "Type") == "oneshot"
    assert last(BACKUP, "ExecStart") == "/opt/holdnote/bin/holdnote backup now --if-configured"
    assert last(BACKUP, "Nice") == "19"
    assert last(BACKUP, "CPUSchedulingPolicy") == "idle"
    assert last(BACKUP, "IOSchedulingClass") == "idle"
    assert memory_bytes(last(BACKUP, "MemoryMax")) > 0
    assert int(last(BACKUP, "OOMScoreAdjust")) > 0


def test_the_backup_is_sandboxed_as_the_night_job():
    """It reads everything the night job reads and may write only the data directory
    (plus the target, from install.sh's drop-in); it cannot reach the network."""
    night = "holdnote-transcribe.service"
    differs = {"ExecStart", "Description", "After", "OnSuccess", "OnFailure", "TimeoutStartSec",
               "CPUSchedulingPolicy", "MemoryMax", "MemoryDenyWriteExecute"}
    sandbox = {key: values for key, values in directives(night).items() if key not in differs}
    mine = directives(BACKUP)
    assert {key: mine.get(key) for key in sandbox} == sandbox
    # Tighter than the night job: no JIT runs in a backup.
    assert last(BACKUP, "MemoryDenyWriteExecute") == "yes"


def render_backup_dropin(target: str) -> subprocess.CompletedProcess:
    need_tool("bash")
    return subprocess.run(["bash", "-c", f'source {REPO / "install.sh"}; backup_dropin "$1"',
                           "bash", target], capture_output=True, text=True, check=False)


def test_backup_target_dropin_from_install_verifies(unit_root):
    """The drop-in install.sh writes from backup.target_dir adds the target, and only it."""
    rendered = render_backup_dropin("/media/holdnote-backup")
    assert rendered.returncode == 0, rendered.stderr
    assert re.findall(r"^ReadWritePaths=(.*)$", rendered.stdout, re.M) == [
        "-/media/holdnote-backup"]
    dropin = unit_root / "etc/systemd/system/holdnote-backup.service.d/target.conf"
    dropin.parent.mkdir(exist_ok=True)
    dropin.write_text(rendered.stdout)
    try:
        done = analyze(unit_root, "verify", BACKUP, "holdnote-transcribe.service")
        assert done.returncode == 0 and "holdnote" not in done.stderr, done.stderr
        assert exposure(unit_root, BACKUP) <= EXPOSURE_LIMITS[BACKUP]
    finally:
        dropin.unlink()
