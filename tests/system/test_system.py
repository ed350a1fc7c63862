"""System test: install.sh on a booted Debian, then the appliance end to end.

On each release install.sh supports, one container (systemd as PID 1, in
systemd-nspawn) is shared by the steps below, which run in order; a failed step makes
the later ones skip, naming it. Debian 13 (trixie, what a new Pi gets) runs every
step; Debian 12 (bookworm) the steps marked ``@on_every_release``: install, TLS,
setup and login, record -> transcribe -> read. The steps: an unsupported release
refused without changing anything; a fresh install with ``--model bundled-tiny``;
the files and the services' sandbox as documented; the web page over TLS from the host,
pinned to the printed fingerprint; first-run setup with the printed code, and login;
a recording through the recorder's control socket from an ALSA file device, the
overnight service started by hand, the draft note read through the web page; an
upgrade from a newer checkout that keeps data, configuration, keys and even the
unlocked state; a second run that changes nothing; a reboot that locks the device
while the recorder still records; the note signed on the page and a backup to a
directory by the backup service; ``--uninstall`` keeping the data; ``--purge``
leaving nothing; then a fresh install, ``holdnote restore`` with the recovery key,
and the same signed note read on the page, the audit chain intact.

Needs root, systemd-nspawn and debootstrap (``make test`` installs them) and the
network to Debian's mirror and PyPI for the install itself. The root file systems
are cached (see tests/system/container.py); durations go to
test-artifacts/system/<release>/durations.txt.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.conftest import REPO, TESTDATA
from tests.system import container as ct
from tests.system.webclient import EXPIRED_FORM, GENERIC_400, WebClient, fingerprint_of

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.timeout(3600)]

CHECKOUT = "/root/holdnote"
NEWER_CHECKOUT = "/root/holdnote-next"
SPEECH_RAW = "/srv/holdnote-test/speech.raw"
USER, PASSPHRASE = "dr.rivera", "correct horse battery staple"
# Drafting stays off here (`--llm none`; a fresh install would download Qwen2.5-1.5B):
# compiling llama.cpp would add minutes;
# the redraft path unit is installed and enabled all the same, as is "Transcribe now"'s.
ALWAYS_ON = ("holdnote-recorder.service", "holdnote-web.service", "holdnote-transcribe.timer",
             "holdnote-draft.path", "holdnote-transcribe-now.path")
SERVICES = ("holdnote-recorder.service", "holdnote-web.service", "holdnote-transcribe.service",
            "holdnote-draft.service", "holdnote-transcribe-now.service")
ARTIFACTS = REPO / "test-artifacts" / "system"
HOLDNOTE = ("runuser", "-u", "holdnote", "--", "/opt/holdnote/bin/holdnote")
# The backup target, as IT mounts a USB drive (README: Backups), and where the test keeps
# a copy of the backup while the installation is purged.
BACKUP_DIR = "/srv/holdnote-backup"
SAVED_BACKUP = "/root/holdnote-backup-saved.age"
# Words of the JFK clip that even the tiny model gets right.
SPOKEN = "country can do for you"
# Every step runs on this release; the steps marked @on_every_release on all of them.
FULL_RELEASE = ct.RELEASES[0]
# The Python each release's python3 is, and so the appliance's virtualenv.
PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


def on_every_release(test):
    """Run this step on every supported release, not only on FULL_RELEASE."""
    test.every_release = True
    return test


def pytest_generate_tests(metafunc):
    """The module-scoped ``system`` fixture, once per release each step runs on."""
    if "system" in metafunc.fixturenames:
        every = getattr(metafunc.function, "every_release", False)
        # FULL_RELEASE is first in every list: pytest groups a module-scoped fixture's
        # parameters by their index, so one release's steps run together, in order.
        releases = ct.RELEASES if every else (FULL_RELEASE,)
        metafunc.parametrize("system", releases, indirect=True, scope="module")


def _missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, debootstrap)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make test installs it)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup file system"
    if not (TESTDATA / "speech/jfk.flac").is_file():
        return f"test data not found at {TESTDATA}"
    return None


@dataclass
class System:
    """The container and what the steps learned, shared in order."""

    vm: ct.Container
    port: int
    release: str
    failed: str | None = None
    durations: dict[str, float] = field(default_factory=dict)
    fingerprint: str = ""
    setup_code: str = ""
    session_id: int = 0
    client: WebClient | None = None
    recovery_key: str = ""
    note_texts: dict[str, str] = field(default_factory=dict)  # section key -> signed text
    recordings: str = ""  # sha256sum of the recordings the backup holds

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; skip it if an earlier one failed; remember a failure."""
        if self.failed:
            pytest.skip(f"skipped: the step '{self.failed}' failed")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.failed = name
            raise
        finally:
            self.durations[name] = time.monotonic() - started

    def install(self, *args: str, checkout: str = CHECKOUT) -> ct.Result:
        """Run install.sh inside as IT would, with the host's pip settings."""
        return self.vm.run(f"{checkout}/install.sh", *args, env=ct.pip_environment(),
                           timeout=1800, check=False)

    def holdnote(self, *args: str, check: bool = True) -> ct.Result:
        """``holdnote …`` inside, as the service user."""
        return self.vm.run(*HOLDNOTE, *args, check=check)

    def health(self) -> dict:
        """/healthz's answer, which must report no problem but the host's clock.

        The container shares the host's kernel clock, so whether it counts as
        synchronised is a fact about the machine running the test, not about
        the install; everything else must be healthy.
        """
        page = self.client.get("/healthz")
        body = json.loads(page.text)
        checks = {problem["check"] for problem in body["problems"]}
        assert page.status == (503 if checks else 200) and checks <= {"clock"}, page.text
        return body


# --- preparing the container ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def speech_pcm(path: Path) -> None:
    """The JFK clip as the raw S16_LE 16 kHz mono the recorder opens, padded with silence
    (an ALSA file PCM returns stale data past the end of its file)."""
    import numpy as np
    from faster_whisper import decode_audio

    audio = decode_audio(str(TESTDATA / "speech/jfk.flac"), sampling_rate=16000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.concatenate([pcm, np.zeros(16000 * 120, dtype="<i2")]).tofile(path)
    path.chmod(0o644)


def alsa_file_device(vm: ct.Container) -> None:
    """The container's default ALSA capture device plays the clip (no sound card here)."""
    speech_pcm(vm.path(SPEECH_RAW))
    vm.path("/etc/asound.conf").write_text(
        "# System test: the default capture device reads a raw file (no sound card).\n"
        "pcm.!default {\n    type file\n    slave.pcm \"null\"\n    file \"/dev/null\"\n"
        f"    infile \"{SPEECH_RAW}\"\n    format \"raw\"\n}}\n")


def preseed_config(vm: ct.Container, port: int) -> None:
    """/etc/holdnote/holdnote.toml prepared before install, as IT may do: a free port
    (the host's network is shared) and a night window that includes now, so that
    starting the overnight service by hand transcribes at once."""
    from appliance import config as config_mod

    now = time.localtime()
    start = (now.tm_hour * 60 + now.tm_min - 60) % 1440
    end = (now.tm_hour * 60 + now.tm_min + 180) % 1440
    text = (config_mod.render_template()
            .replace("port = 8443", f"port = {port}")
            .replace('night_start = "00:30"', f'night_start = "{start // 60:02d}:{start % 60:02d}"')
            .replace('night_end = "06:30"', f'night_end = "{end // 60:02d}:{end % 60:02d}"'))
    target = vm.path("/etc/holdnote/holdnote.toml")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def newer_checkout(vm: ct.Container) -> str:
    """A copy of the checkout with the next patch version, as a later release would be."""
    shutil.copytree(vm.path(CHECKOUT), vm.path(NEWER_CHECKOUT), symlinks=True)
    pyproject = vm.path(NEWER_CHECKOUT) / "pyproject.toml"
    text = pyproject.read_text()
    version = re.search(r'^version = "(\d+)\.(\d+)\.(\d+)"', text, re.M)
    newer = f"{version[1]}.{version[2]}.{int(version[3]) + 1}"
    pyproject.write_text(text.replace(version[0], f'version = "{newer}"'))
    return newer


def save_artifacts(system: System) -> None:
    """Durations always; the journal and install log when a step failed."""
    artifacts = ARTIFACTS / system.release
    artifacts.mkdir(parents=True, exist_ok=True)
    lines = [f"{name:32s} {seconds:7.1f} s" for name, seconds in system.durations.items()]
    lines.append(f"{'total':32s} {sum(system.durations.values()):7.1f} s")
    (artifacts / "durations.txt").write_text("\n".join(lines) + "\n")
    if system.failed and system.vm.process is not None:
        journal = system.vm.run("journalctl", "-b", "--no-pager", "-o", "short-precise",
                                check=False, timeout=60)
        (artifacts / "journal.txt").write_text(journal.stdout + journal.stderr)
        log = system.vm.path("/var/log/holdnote-install.log")
        if log.exists():
            shutil.copy(log, artifacts / "install.log")


@pytest.fixture(scope="module")
def system(request) -> Iterator[System]:
    """A booted container of the release ``request.param``, shared by its steps."""
    reason = _missing_requirement()
    if reason:
        pytest.skip(reason)
    release = request.param
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"holdnote-system-{release}-", dir="/var/tmp"))
    tarball = ct.ensure_rootfs(release, log=ct.CACHE_DIR / f"debootstrap-{release}.log")
    rootfs_s = time.monotonic() - started
    vm = ct.Container(workdir, release, binds=[
        # Downloads kept between runs: a warm run fetches only index files.
        (ct.CACHE_DIR / "apt-archives", "/var/cache/apt/archives", False),
        (ct.CACHE_DIR / "pip-cache", "/root/.cache/pip", False),
    ])
    system = System(vm, free_port(), release)
    system.durations["root file system (cached?)"] = rootfs_s
    try:
        vm.unpack(tarball)
        ct.copy_checkout(REPO, vm.path(CHECKOUT))
        alsa_file_device(vm)
        preseed_config(vm, system.port)
        vm.boot()
        system.durations["unpack and boot"] = time.monotonic() - started - rootfs_s
        yield system
    finally:
        save_artifacts(system)
        vm.destroy()


# --- the steps, in order ------------------------------------------------------------------


def web_client_when_up(system: System, timeout: float = 90) -> WebClient:
    """A fresh browser session once the web page answers again (after a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = WebClient("127.0.0.1", system.port, system.fingerprint)
            if client.get("/healthz").status in (200, 503):  # 503: serving, with problems
                return client
        except OSError:  # gunicorn is not listening yet
            pass
        assert time.monotonic() < deadline, "the web page did not come back"
        time.sleep(1)


def unit_state(system: System, unit: str) -> tuple[str, str]:
    active = system.vm.run("systemctl", "is-active", unit, check=False).stdout.strip()
    enabled = system.vm.run("systemctl", "is-enabled", unit, check=False).stdout.strip()
    return active, enabled


def main_pids(system: System) -> dict[str, str]:
    return {unit: system.vm.run("systemctl", "show", "-P", "MainPID", unit).stdout.strip()
            for unit in ("holdnote-recorder.service", "holdnote-web.service")}


@contextmanager
def fake_os_release(vm: ct.Container, text: str) -> Iterator[None]:
    """/etc/os-release inside replaced by TEXT for a while."""
    real = vm.path("/etc/os-release")
    saved = real.with_name("os-release.holdnote-test")
    real.rename(saved)  # a symlink to ../usr/lib/os-release: kept as it is
    try:
        real.write_text(text)
        yield
    finally:
        real.unlink()
        saved.rename(real)


def test_00_an_unsupported_release_is_refused_and_nothing_changes(system):
    with system.step("unsupported release refused"):
        marker = "/var/tmp/holdnote-test-before-install"
        forky = 'PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\nVERSION_CODENAME=forky\n'
        with fake_os_release(system.vm, forky):
            system.vm.run("touch", marker)
            done = system.install("--model", "bundled-tiny", "--llm", "none", "--yes")
            # Files written since, but the journal (it logs this very command) and the
            # mount points (/run, /tmp: file systems of their own).
            changed = system.vm.sh(
                f"find / -xdev -newer {marker} ! -path '/var/log/journal/*' | "
                "while read -r path; do mountpoint -q \"$path\" || echo \"$path\"; done; "
                "ls -d /run/lock/holdnote-install.lock 2>/dev/null; getent passwd holdnote",
                check=False).stdout
        assert done.returncode == 1, done
        assert done.stdout == ""
        assert done.stderr.splitlines() == [(
            "install.sh: unsupported release: Debian GNU/Linux forky/sid (forky). Holdnote installs "
            "on Debian 12 (bookworm) or 13 (trixie), or Raspberry Pi OS of those releases, "
            "64-bit (arm64 or amd64)")]
        assert changed == ""


@on_every_release
def test_01_fresh_install(system):
    with system.step("fresh install"):
        done = system.install("--model", "bundled-tiny", "--llm", "none", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Holdnote is installed and running" in done.stdout
        system.fingerprint = re.search(r"fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})",
                                       done.stdout).group(1)
        system.setup_code = re.search(r"Setup code:\s+(\S+)", done.stdout).group(1)
        for unit in ALWAYS_ON:
            assert unit_state(system, unit) == ("active", "enabled"), unit
        failed = system.vm.run("systemctl", "--failed", "--no-legend", "--plain").stdout
        assert failed.strip() == ""
        python = system.vm.run("/opt/holdnote/bin/python", "-c",
                               "import sys; print('%d.%d' % sys.version_info[:2])").stdout
        assert python.strip() == PYTHON[system.release]


def test_02_files_and_sandbox_as_documented(system):
    with system.step("files and sandbox"):
        modes = system.vm.run("stat", "-c", "%n %a %U %G", "/var/lib/holdnote", "/etc/holdnote",
                              "/etc/holdnote/holdnote.toml", "/run/holdnote").stdout.splitlines()
        assert modes == ["/var/lib/holdnote 700 holdnote holdnote",
                         "/etc/holdnote 750 root holdnote",
                         "/etc/holdnote/holdnote.toml 640 root holdnote",
                         "/run/holdnote 700 holdnote holdnote"]
        groups = system.vm.run("id", "-nG", "holdnote").stdout.split()
        assert "audio" in groups
        scores = {}
        for unit in SERVICES:
            report = system.vm.run("systemd-analyze", "security", "--no-pager", unit).stdout
            scores[unit] = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)",
                                           report).group(1))
        (ARTIFACTS / system.release).mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / system.release / "security-scores.json").write_text(json.dumps(scores, indent=2))
        assert scores["holdnote-recorder.service"] <= 3.5
        assert scores["holdnote-web.service"] <= 2.5
        assert scores["holdnote-transcribe.service"] <= 2.5
        assert scores["holdnote-draft.service"] <= 2.5
        assert scores["holdnote-transcribe-now.service"] <= 2.5


@on_every_release
def test_03_web_page_over_tls_from_the_host(system):
    with system.step("web page over TLS"):
        # The client refuses any certificate but the one install.sh printed.
        system.client = WebClient("127.0.0.1", system.port, system.fingerprint)
        health = system.health()
        assert (health["setup_done"], health["locked"]) == (False, True)
        assert health["recorder"] == "not_set_up"  # no practice key before setup
        first = system.client.get("/")
        assert first.status == 200 and first.path == "/setup"
        # Clients that leave right after the handshake (a browser's spare connection,
        # a certificate check like the one above) must not break the forms that follow:
        # on trixie the session tickets written after they left broke later form bodies.
        for _ in range(6):
            fingerprint_of("127.0.0.1", system.port)
        answers = [system.client.post("/login", {"username": USER}, csrf="") for _ in range(30)]
        # Each form body was read: the CSRF check answered, never "could not be understood".
        assert all(EXPIRED_FORM in a.text and GENERIC_400 not in a.text for a in answers), [
            (a.status, a.text[:300]) for a in answers if EXPIRED_FORM not in a.text]


@on_every_release
def test_04_setup_with_the_printed_code_then_login(system):
    with system.step("setup and login"):
        wrong = system.client.submit("/setup", {"code": "AAAA-BBBB-CCCC", "username": USER,
                                                "passphrase": PASSPHRASE, "repeat": PASSPHRASE})
        assert wrong.status == 403
        done = system.client.setup(system.setup_code, USER, PASSPHRASE)
        assert done.status == 200, done.text[-2000:]
        system.recovery_key = system.client.recovery_key  # shown once: kept for the restore
        # A fresh browser: the account works and logging in leaves the device unlocked.
        system.client = WebClient("127.0.0.1", system.port, system.fingerprint)
        page = system.client.login(USER, PASSPHRASE)
        assert page.status == 200 and page.path in ("/", "/sessions")
        assert system.health()["locked"] is False
        again = system.holdnote("setup-code", check=False)
        assert again.returncode != 0  # the setup code is spent once an account exists


@on_every_release
def test_05_record_transcribe_and_read_the_draft(system):
    with system.step("record, transcribe, read"):
        start = json.loads(system.holdnote("record", "start", "--json").stdout)
        assert start["ok"] and start["state"] == "recording", start
        system.session_id = start["session_id"]
        refused = system.install()  # an upgrade never restarts the recorder mid-session
        assert refused.returncode == 1 and "being recorded" in refused.stderr, refused
        time.sleep(12)  # the recorder captures in real time; the clip lasts 11 s
        stop = json.loads(system.holdnote("record", "stop", "--json").stdout)
        assert stop["ok"], stop
        # "Transcribe now" on the page: holdnote-transcribe-now.path starts the idle-priority job.
        where = f"/sessions/{system.session_id}"
        queued = system.client.post(f"{where}/transcribe", {}, system.client.get(where).csrf())
        assert queued.status == 200 and "Transcription queued" in queued.text, queued.text[-2000:]
        deadline = time.monotonic() + 900
        while SPOKEN not in (text := system.client.get(where).visible_text().lower()):
            assert time.monotonic() < deadline, system.vm.run(
                "journalctl", "-u", "holdnote-transcribe-now.service", "--no-pager").stdout[-3000:]
            time.sleep(3)
        assert "draft" in text
        # The audio stays until the note is signed, and the web service plays it decrypted.
        status, headers, body = system.client.fetch(f"{where}/audio", {"Range": "bytes=0-4095"})
        assert status == 206 and body[:4] == b"RIFF" and len(body) == 4096, (status, body[:200])
        assert headers["Cache-Control"] == "no-store"


def test_06_upgrade_keeps_data_config_keys_and_the_unlocked_state(system):
    with system.step("upgrade"):
        version = newer_checkout(system.vm)
        config_before = system.vm.run("sha256sum", "/etc/holdnote/holdnote.toml").stdout
        pids_before = main_pids(system)
        done = system.install(checkout=NEWER_CHECKOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"holdnote {version}" in done.stdout
        assert "restarted holdnote-web.service" in done.stdout
        assert main_pids(system) != pids_before
        assert system.vm.run("sha256sum", "/etc/holdnote/holdnote.toml").stdout == config_before
        # Same login cookie, same practice key still unlocked, same note.
        assert system.health()["locked"] is False
        page = system.client.get(f"/sessions/{system.session_id}")
        assert page.status == 200 and SPOKEN in page.visible_text().lower()


def test_07_second_run_changes_nothing(system):
    with system.step("second run"):
        pids_before = main_pids(system)
        done = system.install(checkout=NEWER_CHECKOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Nothing to change" in done.stdout
        assert "[ ok ]" not in done.stdout
        assert main_pids(system) == pids_before


def test_08_reboot_locks_the_device_and_the_recorder_still_records(system):
    with system.step("reboot"):
        system.vm.reboot()
        deadline = time.monotonic() + 120
        while unit_state(system, "holdnote-web.service")[0] != "active" or \
                system.vm.run("test", "-S", "/run/holdnote/recorder.sock", check=False).returncode:
            assert time.monotonic() < deadline, "services did not come back after the reboot"
            time.sleep(1)
        system.client = web_client_when_up(system)
        assert system.health()["locked"] is True
        start = json.loads(system.holdnote("record", "start", "--json").stdout)
        assert start["ok"] and start["state"] == "recording", start
        time.sleep(3)
        stop = json.loads(system.holdnote("record", "stop", "--json").stdout)
        assert stop["ok"], stop
        size = system.vm.run("sh", "-c", "du -b /var/lib/holdnote/recordings/* | sort -n | tail -1"
                             ).stdout.split()[0]
        assert int(size) > 16000 * 2  # more than a second of audio, encrypted
        failed = system.vm.run("systemctl", "--failed", "--no-legend", "--plain").stdout
        assert failed.strip() == ""


def note_form(page) -> tuple[str, list[str]]:
    """The note form's version and its section keys."""
    form = page.text[page.text.index('data-testid="note-form"'):]
    version = re.search(r'name="version" value="([^"]*)"', form).group(1)
    return version, re.findall(r'<textarea[^>]*name="section-([^"]+)"', form)


def backup_config(vm: ct.Container, target: str) -> None:
    """Back up to TARGET, a plain directory here (a mounted drive on a device)."""
    path = vm.path("/etc/holdnote/holdnote.toml")
    lines = path.read_text().splitlines()
    settings = [f'target_dir = "{target}"', "require_mount = false"]
    if "[backup]" in lines:  # the template's section: set the keys there
        at = lines.index("[backup]") + 1
        end = next((n for n in range(at, len(lines)) if lines[n].startswith("[")), len(lines))
        kept = [line for line in lines[at:end]
                if not re.match(r"\s*(target_dir|require_mount)\s*=", line)]
        lines[at:end] = settings + kept
    else:
        lines += ["", "[backup]", *settings]
    path.write_text("\n".join(lines) + "\n")  # the same file: its owner and mode stay


def recordings(system: System) -> str:
    """Checksums of the encrypted recordings on the device, sorted."""
    return system.vm.sh("find /var/lib/holdnote/recordings -type f -name '*.age' "
                        "-exec sha256sum {} + | sort").stdout


def test_08a_sign_the_note_on_the_page(system):
    with system.step("sign the note"):
        assert system.client.login(USER, PASSPHRASE).status == 200
        where = f"/sessions/{system.session_id}"
        page = system.client.get(where)
        version, sections = note_form(page)
        assert sections, page.text[-2000:]
        system.note_texts = {key: f"Restore check ({key}): sleeping better, plan kept."
                             for key in sections}
        signed = system.client.post(f"{where}/note", {
            "version": version, "action": "sign", "reviewed": "yes",
            **{f"section-{key}": text for key, text in system.note_texts.items()}},
            page.csrf())
        assert signed.status == 200 and 'data-testid="signed-banner"' in signed.text, \
            signed.text[-3000:]


def test_08a2_a_client_page_and_the_signed_note_as_pdf(system):
    with system.step("client and PDF"):
        made = system.client.submit("/clients/new", {
            "name": "R.K.", "identifier": "", "start_date": "", "goals": "Sleep through the night"})
        found = re.match(r"/clients/(\d+)/consent$", made.path)
        assert made.status == 200 and found, (made.path, made.text[-2000:])
        client = f"/clients/{found.group(1)}"
        where = f"/sessions/{system.session_id}"
        assigned = system.client.post(f"{where}/client", {"client_id": found.group(1)},
                                      system.client.get(where).csrf())
        assert assigned.status == 200 and client in assigned.text, assigned.text[-2000:]
        page = system.client.get(client)
        assert page.status == 200 and "R.K." in page.visible_text() and where in page.text
        # The PDF is made on the device with the installed fonts (fonts-dejavu-core).
        for path in (f"{where}/export.pdf", f"{client}/export.pdf"):
            status, headers, body = system.client.fetch(path, {})
            assert status == 200 and body.startswith(b"%PDF"), (path, status, body[:300])
            text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
                            .split())
            assert "R.K." in text and "sleeping better, plan kept" in text, (path, text[:1500])


def test_08b_back_up_to_a_directory(system):
    with system.step("back up"):
        system.vm.run("install", "-d", "-o", "holdnote", "-g", "holdnote", "-m", "700",
                      BACKUP_DIR)
        backup_config(system.vm, BACKUP_DIR)
        # Re-run after changing the configuration: the backup unit may now write there.
        done = system.install(checkout=NEWER_CHECKOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        system.recordings = recordings(system)
        # The unit the overnight job starts, with its sandbox, started by hand.
        started = system.vm.run("systemctl", "start", "holdnote-backup.service", check=False,
                                timeout=600)
        assert started.returncode == 0, system.vm.run(
            "journalctl", "-u", "holdnote-backup.service", "--no-pager").stdout[-3000:]
        names = system.vm.run("ls", "-A", BACKUP_DIR).stdout.split()
        assert len(names) == 1, names  # no partial file left beside it
        assert re.fullmatch(r"holdnote-backup-\d{8}T\d{6}Z\.age", names[0]), names
        listed = system.holdnote("backup", "list").stdout  # checked in full: logged in above
        assert re.search(re.escape(names[0]) + r".* sessions\s+verified", listed), listed
        data = system.vm.path(f"{BACKUP_DIR}/{names[0]}").read_bytes()
        assert data.startswith(b"age-encryption.org/v1\n")
        assert not any(text.encode() in data for text in system.note_texts.values())
        system.vm.run("cp", f"{BACKUP_DIR}/{names[0]}", SAVED_BACKUP)
        system.health()  # the newest verified backup is fresh: nothing to report


def test_09_uninstall_keeps_data_and_config(system):
    with system.step("uninstall"):
        done = system.install("--uninstall")
        assert done.returncode == 0, done.stdout + done.stderr
        gone = system.vm.sh("ls /opt/holdnote /usr/local/bin/holdnote "
                            "/etc/systemd/system/holdnote-* 2>/dev/null | wc -l").stdout
        assert gone.strip() == "0"
        kept = system.vm.run("sh", "-c", "ls /var/lib/holdnote /etc/holdnote").stdout
        assert "holdnote.toml" in kept and "recordings" in kept
        assert system.vm.run("id", "holdnote", check=False).returncode == 0


def test_10_purge_leaves_nothing(system):
    with system.step("purge"):
        done = system.install("--uninstall", "--purge", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        left = system.vm.sh(
            "ls -d /opt/holdnote /etc/holdnote /var/lib/holdnote /run/holdnote "
            "/usr/local/bin/holdnote /var/log/holdnote-install.log "
            "/etc/systemd/system/holdnote-* 2>/dev/null; getent passwd holdnote; "
            "getent group holdnote; systemctl list-units --all --no-legend 'holdnote*'",
            check=False).stdout
        assert left.strip() == ""


def test_11_install_again_restore_and_read_the_signed_note(system):
    with system.step("install again and restore"):
        # The drive keeps its backups through a purge.
        sums = system.vm.sh(f"sha256sum < {SAVED_BACKUP}; cat {BACKUP_DIR}/* | sha256sum"
                            ).stdout.splitlines()
        assert len(sums) == 2 and sums[0] == sums[1], sums
        preseed_config(system.vm, system.port)
        done = system.install("--model", "bundled-tiny", "--llm", "none", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        restored = system.vm.run("/usr/local/bin/holdnote", "restore", SAVED_BACKUP,
                                 "--recovery-key", input=system.recovery_key + "\n",
                                 check=False, timeout=600)
        assert restored.returncode == 0, restored
        assert recordings(system) == system.recordings
        # Then as the README says: restart the services, re-run install.sh for the restored
        # configuration (here: the backup target the sandbox must let the backup write).
        system.vm.run("systemctl", "restart", "holdnote-recorder", "holdnote-web")
        again = system.install()
        assert again.returncode == 0, again.stdout + again.stderr
        dropin = system.vm.path("/etc/systemd/system/holdnote-backup.service.d/target.conf")
        assert BACKUP_DIR in dropin.read_text()
        # The certificate comes back too: the printed fingerprint of the first install.
        system.client = web_client_when_up(system)
        assert system.client.login(USER, PASSPHRASE).status == 200
        page = system.client.get(f"/sessions/{system.session_id}")
        text = " ".join(page.visible_text().split())
        assert page.status == 200 and f"Signed by {USER}" in text, text[-3000:]
        assert all(note in text for note in system.note_texts.values()), text[-3000:]
        assert SPOKEN in text.lower()
        verdict = system.holdnote("audit", "verify")
        assert "audit log intact" in verdict.stdout, verdict
        log = system.holdnote("audit", "show", "--limit", "100000").stdout
        signed = re.search(r"\snote\.sign\s", log)
        restore = re.search(r"\srestore\s+restore\.done\s", log)
        assert signed and restore and signed.start() < restore.start(), log[-3000:]
