"""A booted Debian (systemd as PID 1) in systemd-nspawn, for the system test.

One for each release install.sh supports (``RELEASES``: trixie, bookworm), whatever
the host runs. Each release's root file system is made once with debootstrap and
cached as a tarball (``$HOLDNOTE_TEST_CACHE/<release>-rootfs.tar``, by default in
``/var/cache/holdnote-tests``); each run unpacks a fresh copy, so every run installs
on a clean machine. The host's apt sources (their suites renamed to the container's
release), apt and pip settings and extra CA certificates are copied in, so apt and
pip inside reach the same mirrors as the host. Package downloads are cached across
runs in bind-mounted directories beside the tarballs (apt archives, pip's cache).

The container shares the host's network (the web UI inside answers on the host's
loopback), runs in a cgroup of its own that is removed afterwards, and is driven with
``nsenter … systemd-run --wait --pipe``: every command runs as a transient unit of the
container's own systemd.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(os.environ.get("HOLDNOTE_TEST_CACHE", "/var/cache/holdnote-tests"))
# The releases install.sh supports (Debian 12 and 13, and Raspberry Pi OS on them).
RELEASES = ("trixie", "bookworm")
MIRROR_ENV = "HOLDNOTE_TEST_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# A Debian "standard" base plus what a Raspberry Pi OS image has anyway: a D-Bus,
# CA certificates and systemd as init.
DEBOOTSTRAP_INCLUDE = "dbus,ca-certificates,systemd-sysv"
# apt snippets that would defeat the bind-mounted package cache.
APT_SNIPPETS_SKIPPED = {"docker-clean"}
# Exit status of systemd-nspawn when the container asked for a reboot.
REBOOT_STATUS = 133


class ContainerError(RuntimeError):
    """The container could not be built, booted or driven."""


@dataclass(frozen=True)
class Result:
    """What a command inside the container returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        """Raise with the command's output when it failed."""
        if self.returncode != 0:
            raise ContainerError(
                f"{shlex.join(self.argv)} exited {self.returncode}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
            )
        return self


# --- the cached root file system --------------------------------------------------------


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (deb822 or one-line sources)."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV]
    texts = [p.read_text() for p in Path("/etc/apt/sources.list.d").glob("*.sources")]
    for text in texts:
        match = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M)
        if match:
            return match.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        match = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", sources.read_text(), re.M)
        if match:
            return match.group(1)
    return DEFAULT_MIRROR


def host_release() -> str:
    """The host's release codename (bookworm, trixie, ...)."""
    text = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)", text, re.M)
    return match.group(1) if match else ""


def rootfs_tarball(release: str) -> Path:
    return CACHE_DIR / f"{release}-rootfs.tar"


def ensure_rootfs(release: str, log: Path | None = None) -> Path:
    """The cached root file system tarball of RELEASE, made with debootstrap if missing."""
    tarball = rootfs_tarball(release)
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with open(tarball.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it
        if tarball.exists():
            return tarball
        build = tarball.parent / f"build-{uuid.uuid4().hex[:8]}"
        try:
            _debootstrap(release, build, log)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", build, "-cf", partial, "."],
                           check=True)
            partial.rename(tarball)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return tarball


def _debootstrap(release: str, target: Path, log: Path | None) -> None:
    command = ["debootstrap", f"--include={DEBOOTSTRAP_INCLUDE}", release, str(target),
               host_mirror()]
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with open(log or os.devnull, "ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise ContainerError(f"debootstrap failed ({done.returncode}); see {log}")
    # A fresh machine has no machine-id yet; systemd makes one at first boot.
    (target / "etc/machine-id").write_text("")
    # apt's archive lists would be stale in the cache; a fresh `apt-get update` is
    # exactly what install.sh does on a new machine.
    for lists in (target / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()


# --- host settings copied in ---------------------------------------------------------------


def _pip_config_files() -> list[tuple[Path, str]]:
    """Host pip configuration files and where they go inside the container."""
    candidates = [
        (Path("/etc/pip.conf"), "etc/pip.conf"),
        (Path("/etc/xdg/pip/pip.conf"), "etc/xdg/pip/pip.conf"),
        (Path("/etc/xdg/pip/constraints.txt"), "etc/xdg/pip/constraints.txt"),
        (Path.home() / ".config/pip/pip.conf", "root/.config/pip/pip.conf"),
        (Path.home() / ".pip/pip.conf", "root/.pip/pip.conf"),
    ]
    return [(src, dst) for src, dst in candidates if src.is_file()]


def pip_environment() -> dict[str, str]:
    """The host's PIP_* variables (index, find-links, certificates) for pip inside."""
    return {k: v for k, v in os.environ.items() if k.startswith("PIP_") and k != "PIP_CACHE_DIR"}


def _local_pip_sources() -> set[Path]:
    """Local directories the host's pip reads packages from (find-links, file:// indexes)."""
    texts = [src.read_text(errors="replace") for src, _ in _pip_config_files()]
    texts += list(pip_environment().values())
    found = set()
    for text in texts:
        for match in re.finditer(r"(?:file://)?(/[\w./+-]+)", text):
            path = Path(match.group(1))
            if path.name == "simple":  # a PEP 503 index links to files beside it
                path = path.parent
            if path.is_dir() and path.parts[1] not in {"etc", "root", "proc", "sys", "dev"}:
                found.add(path)
    return found


def _suite_for(suite: str, host: str, release: str) -> str:
    """bookworm, bookworm-updates, bookworm-security -> trixie, trixie-updates, ..."""
    if host and (suite == host or suite.startswith(f"{host}-")):
        return release + suite[len(host):]
    return suite


def retarget_sources(text: str, host: str, release: str) -> str:
    """apt sources (deb822 or one-line) naming the host's release, renamed to RELEASE's
    suites; mirrors, components and options are kept."""
    if host == release:
        return text

    def deb822(match: re.Match) -> str:
        return match[1] + " ".join(_suite_for(s, host, release) for s in match[2].split())

    def one_line(match: re.Match) -> str:
        return match[1] + _suite_for(match[2], host, release)

    text = re.sub(r"^(Suites:[ \t]*)(.*)$", deb822, text, flags=re.M | re.I)
    return re.sub(r"^(deb(?:-src)?[ \t]+(?:\[[^]]*\][ \t]+)?\S+[ \t]+)(\S+)", one_line, text,
                  flags=re.M)


def _copy_signing_keyrings(text: str, rootfs: Path) -> None:
    """Keyrings the sources name (Signed-By) that the container's release lacks: a
    trixie host names debian-archive-keyring.pgp, which bookworm does not have."""
    for match in re.finditer(r"(?:^Signed-By:[ \t]*|signed-by=)(/[^\s\],]+)", text, re.M | re.I):
        keyring = Path(match[1])
        target = rootfs / str(keyring).lstrip("/")
        if keyring.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(keyring, target)


def copy_host_settings(rootfs: Path, release: str) -> None:
    """apt sources (for RELEASE) and settings, pip settings and extra CA certificates
    from the host."""
    apt = Path("/etc/apt")
    host = host_release()
    if (apt / "sources.list").exists():
        shutil.copy(apt / "sources.list", rootfs / "etc/apt/sources.list")
    else:  # the host lists its mirrors in sources.list.d only; debootstrap's would double them
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for sub in ("sources.list.d", "apt.conf.d", "trusted.gpg.d", "keyrings", "auth.conf.d"):
        src = apt / sub
        if not src.is_dir():
            continue
        for item in src.iterdir():
            if item.name in APT_SNIPPETS_SKIPPED or not item.is_file() or item.name.endswith(".disabled-by-farm"):
                continue
            (rootfs / "etc/apt" / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(item, rootfs / "etc/apt" / sub / item.name)
    sources = [rootfs / "etc/apt/sources.list", *(rootfs / "etc/apt/sources.list.d").glob("*")]
    for path in sources:
        if path.suffix in (".list", ".sources") and path.is_file():
            path.write_text(retarget_sources(path.read_text(), host, release))
            _copy_signing_keyrings(path.read_text(), rootfs)
    for src, dst in _pip_config_files():
        (rootfs / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, rootfs / dst)
    cas = Path("/usr/local/share/ca-certificates")
    if cas.is_dir():
        shutil.copytree(cas, rootfs / "usr/local/share/ca-certificates", dirs_exist_ok=True)
        subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- cgroups ----------------------------------------------------------------------------


def _cgroup_roots() -> list[Path]:
    """The mounted hierarchies systemd-nspawn places the container in."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():  # unified (v2 only)
        return [base]
    return [p for p in (base / "unified", base / "systemd") if p.is_dir()]


def _remove_cgroup(path: Path) -> None:
    if not path.exists():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


# --- the container ----------------------------------------------------------------------


@dataclass
class Container:
    """One booted container on an unpacked copy of a release's cached root file system."""

    workdir: Path
    release: str  # one of RELEASES
    name: str = field(init=False)
    binds: list[tuple[Path, str, bool]] = field(default_factory=list)  # host, inside, read-only
    rootfs: Path = field(init=False)
    cgroup: str = field(init=False)
    console_log: Path = field(init=False)
    process: subprocess.Popen | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rootfs = self.workdir / "rootfs"
        self.cgroup = f"holdnote-test-{uuid.uuid4().hex[:8]}"
        # Unique per run: nspawn keeps per-machine state under /run/systemd/nspawn.
        self.name = self.cgroup
        self.console_log = self.workdir / "console.log"

    def unpack(self, tarball: Path) -> None:
        """A fresh root file system from the release's cached tarball, with the host's
        settings."""
        self.rootfs.mkdir(parents=True)
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-xpf", str(tarball),
                        "-C", str(self.rootfs)], check=True)
        (self.rootfs / "etc/hostname").write_text(self.name + "\n")
        copy_host_settings(self.rootfs, self.release)
        for host, _inside, _ro in self.binds:
            host.mkdir(parents=True, exist_ok=True)
        for source in _local_pip_sources():
            self.binds.append((source, str(source), True))

    # --- lifecycle ------------------------------------------------------------------

    def boot(self, timeout: float = 120) -> None:
        """Start systemd-nspawn and wait until the container's systemd has booted."""
        if self.process is not None:
            raise ContainerError("the container is already running")
        roots = _cgroup_roots()
        for root in roots:
            (root / self.cgroup).mkdir(exist_ok=True)
        # Enter our own cgroup before exec, so the container's cgroups (payload,
        # supervisor) are created beneath it and can be removed afterwards.
        enter = "; ".join(f"echo $$ > {root / self.cgroup / 'cgroup.procs'}" for root in roots)
        nspawn = ["systemd-nspawn", "-q", "-D", str(self.rootfs), "-M", self.name, "--boot",
                  "--register=no", "--keep-unit", "--resolv-conf=copy-host"]
        for host, inside, read_only in self.binds:
            nspawn.append(f"--bind{'-ro' if read_only else ''}={host}:{inside}")
        with open(self.console_log, "ab") as log:
            self.process = subprocess.Popen(
                ["sh", "-c", f"{enter}; exec \"$@\"", "sh", *nspawn],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_booted(timeout)

    def _leader(self) -> int | None:
        """The PID (on the host) of the container's systemd."""
        if self.process is None or self.process.poll() is not None:
            return None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
        return None

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited {self.process.returncode}; "
                                     f"see {self.console_log}")
            if self._leader():
                # Fails with "Failed to connect to bus" until systemd inside is up.
                state = self.run("systemctl", "is-system-running", "--wait", timeout=timeout,
                                 check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.5)
        raise ContainerError(f"the container did not boot in {timeout:.0f} s; see {self.console_log}")

    def reboot(self, timeout: float = 120) -> None:
        """``systemctl reboot`` inside, then boot the same root file system again."""
        self.run("systemctl", "reboot", check=False)
        status = self._wait_exit(timeout)
        if status != REBOOT_STATUS:
            raise ContainerError(f"systemd-nspawn exited {status} on reboot, not {REBOOT_STATUS}")
        self.process = None
        self.boot(timeout)

    def _wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ContainerError(f"the container did not stop in {timeout:.0f} s") from None

    def stop(self, timeout: float = 60) -> None:
        """Power the container off (SIGKILL if it hangs) and remove its cgroup."""
        if self.process is not None and self.process.poll() is None:
            self.run("systemctl", "poweroff", check=False, timeout=30)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
        for root in _cgroup_roots():
            _remove_cgroup(root / self.cgroup)

    def destroy(self) -> None:
        """Stop, then delete the unpacked root file system."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- commands -----------------------------------------------------------------

    def run(self, *argv: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 300, check: bool = True) -> Result:
        """Run a command inside as root, as a transient unit of the container's systemd."""
        leader = self._leader()
        if leader is None:
            raise ContainerError("the container is not running")
        command = ["nsenter", "-t", str(leader), "-a", "systemd-run", "--wait", "--pipe",
                   "--collect", "--quiet", "--service-type=exec"]
        for key, value in (env or {}).items():
            command.append(f"--setenv={key}={value}")
        command += ["--", *argv]
        try:
            done = subprocess.run(command, input=input, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as error:
            raise ContainerError(f"{shlex.join(argv)} did not finish in {timeout:.0f} s:\n"
                                 f"{(error.stdout or b'')[-3000:]!r}") from None
        result = Result(tuple(argv), done.returncode, done.stdout, done.stderr)
        return result.check() if check else result

    def sh(self, script: str, **kwargs) -> Result:
        """Run a shell snippet inside."""
        return self.run("sh", "-c", script, **kwargs)

    def path(self, inside: str) -> Path:
        """The host path of a file inside the container."""
        return self.rootfs / inside.lstrip("/")


def copy_checkout(repo: Path, dest: Path) -> None:
    """The files of a checkout (tracked and new, not ignored ones such as .venv)."""
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=False,
    )
    if listing.returncode == 0:
        names = [n for n in listing.stdout.decode().split("\0") if n]
    else:  # not a git checkout (an unpacked release): everything but local clutter
        skip = {".git", ".venv", "__pycache__", ".demo", "build", ".pytest_cache"}
        names = [str(p.relative_to(repo)) for p in repo.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(repo).parts)]
    for name in names:
        source = repo / name
        if not source.is_file():  # deleted in the work tree but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
