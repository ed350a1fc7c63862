"""config/requirements*.lock agree with pyproject.toml, and the tests run what ships.

`make lock` writes the locks (uv pip compile, then tests/lockfile.py adds the
header); `make venv` and install.sh install exactly them, hash-checked. These
tests fail when pyproject.toml's dependencies changed without `make lock`, when a
lock pins a version outside pyproject's range (or nothing) on one of the
platforms it covers, when a pin lost its hashes, when the test lock and the
shipped lock disagree, when a no-deps lock (the bundled language model) pins
anything but its own package, when this environment is not the test lock (`make
venv`), or when code imports a package pyproject.toml does not declare.
"""

from __future__ import annotations

import ast
import importlib.metadata
import platform
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests import lockfile
from tests.conftest import REPO

RUN_MAKE_LOCK = "run `make lock` (and commit config/requirements*.lock)"


def lock_path(name: str) -> Path:
    return lockfile.LOCK_DIR / name


BUILD, RUNTIME, MODEL, TEST, DRAFTING, LLM = (lock_path(name) for name in lockfile.LOCKS)
ALL_LOCKS = [BUILD, RUNTIME, MODEL, TEST, DRAFTING, LLM]


def makefile_platforms() -> list[str]:
    match = re.search(r"^LOCK_PLATFORMS\s*:=\s*(.+)$", (REPO / "Makefile").read_text(),
                      re.MULTILINE)
    assert match, "the Makefile has no LOCK_PLATFORMS"
    return match[1].split()


PLATFORMS = makefile_platforms()


def environment(name: str) -> dict[str, str]:
    """Marker values of CPython ``version`` on Linux ``machine`` ("3.13/aarch64")."""
    version, machine = name.split("/")
    return {"python_version": version, "python_full_version": f"{version}.0",
            "implementation_version": f"{version}.0", "platform_machine": machine,
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "platform_release": "", "platform_version": "", "extra": ""}


def applies(marker: str, env: dict[str, str]) -> bool:
    return not marker or Marker(marker).evaluate(env)


def locked(lock: Path, name: str) -> dict[str, Version]:
    """The versions ``lock`` installs on platform ``name``, by canonical package name."""
    env = environment(name)
    found: dict[str, Version] = {}
    for package, version, marker in lockfile.pins(lock):
        if applies(marker, env):
            key = canonicalize_name(package)
            assert key not in found, f"{lock.name} pins {package} twice on {name}"
            found[key] = Version(version)
    return found


def tables() -> dict:
    return lockfile.dependency_tables()


def requirements_of(lock: Path) -> list[str]:
    """What pyproject.toml asks of each lock."""
    t = tables()
    extras = t["optional-dependencies"]
    return {BUILD: t["build-system.requires"] + t["source-build-requires"],
            RUNTIME: t["dependencies"], MODEL: extras["bundled-model"],
            TEST: t["dependencies"] + extras["test"], DRAFTING: extras["drafting"],
            LLM: extras["bundled-llm"]}[lock]


# --- made from this pyproject.toml, for these platforms ------------------------------------


@pytest.mark.parametrize("lock", ALL_LOCKS, ids=lambda p: p.name)
def test_lock_was_made_from_this_pyproject(lock):
    assert lock.is_file(), f"{lock.relative_to(REPO)} is missing: {RUN_MAKE_LOCK}"
    recorded = lockfile.header_value(lock, lockfile.DIGEST_LINE)
    assert recorded == lockfile.pyproject_digest(), (
        f"the dependencies in pyproject.toml changed since {lock.relative_to(REPO)} was made: "
        f"{RUN_MAKE_LOCK}")


@pytest.mark.parametrize("lock", ALL_LOCKS, ids=lambda p: p.name)
def test_lock_covers_the_makefiles_platforms(lock):
    covered = (lockfile.header_value(lock, lockfile.PLATFORMS_LINE) or "").split()
    assert covered == PLATFORMS, (
        f"{lock.relative_to(REPO)} covers {covered}, the Makefile's LOCK_PLATFORMS are "
        f"{PLATFORMS}: {RUN_MAKE_LOCK}")


@pytest.mark.parametrize("lock", ALL_LOCKS, ids=lambda p: p.name)
def test_every_line_is_a_pin_with_hashes(lock):
    entries = re.split(r"\n(?=\S)", lock.read_text())
    pinned = 0
    for entry in entries:
        if entry.startswith("#") or not entry.strip():
            continue
        first = entry.splitlines()[0]
        assert lockfile.PIN.match(first), f"{lock.name}: not an exact pin: {first!r}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{lock.name}: no hash for {first}"
        pinned += 1
    assert pinned == len(lockfile.pins(lock)) > 0


# --- every requirement pinned inside its range, on every platform ---------------------------


@pytest.mark.parametrize("name", PLATFORMS)
@pytest.mark.parametrize("lock", ALL_LOCKS, ids=lambda p: p.name)
def test_every_requirement_is_pinned_within_its_range(lock, name):
    pins = locked(lock, name)
    env = environment(name)
    wrong = []
    for text in requirements_of(lock):
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            assert canonicalize_name(requirement.name) not in pins, f"{text} is locked on {name}"
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{text} (locked: {version or 'nothing'})")
    assert not wrong, f"{lock.name} on {name} does not satisfy {wrong}: {RUN_MAKE_LOCK}"


@pytest.mark.parametrize("name", PLATFORMS)
def test_the_tests_run_the_versions_that_ship(name):
    tested = locked(TEST, name)
    for lock in (RUNTIME, MODEL, DRAFTING, BUILD):
        differ = {package: (version, tested.get(package))
                  for package, version in locked(lock, name).items()
                  if (package in tested and tested[package] != version)
                  or (package not in tested and lock is not BUILD)}
        assert not differ, f"{lock.name} and {TEST.name} differ on {name}: {differ}"


@pytest.mark.parametrize("name", PLATFORMS)
def test_no_deps_locks_pin_their_own_packages_only(name):
    """The bundled language model is installed with --no-deps: were its dependency `llm`
    (a CLI with a dozen packages of its own) locked, it would be installed too."""
    for lock in (lock_path(n) for n in lockfile.NO_DEPS_LOCKS):
        wanted = {canonicalize_name(Requirement(text).name) for text in requirements_of(lock)}
        assert set(locked(lock, name)) == wanted, f"{lock.name} on {name}"
        assert not wanted & set(locked(TEST, name)), f"{TEST.name} resolved {wanted}'s dependencies"


def test_llama_cpp_python_builds_from_source_with_locked_tools():
    """No wheel on PyPI: installs compile it with --no-build-isolation, so its build
    backend must be in the build lock, and lockfile names the Debian packages it needs."""
    assert "llama-cpp-python" in lockfile.SOURCE_BUILDS
    assert "cmake" in lockfile.SOURCE_BUILDS["llama-cpp-python"]
    for name in PLATFORMS:
        assert "scikit-build-core" in locked(BUILD, name)
        assert "llama-cpp-python" in locked(DRAFTING, name)


def test_lgpio_is_locked_for_aarch64_only():
    for name in PLATFORMS:
        assert ("lgpio" in locked(RUNTIME, name)) == name.endswith("/aarch64"), name


# --- this environment ---------------------------------------------------------------------


def this_platform() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}/{platform.machine()}"


def test_this_environment_is_the_test_lock():
    if this_platform() not in PLATFORMS:
        pytest.skip(f"the locks do not cover {this_platform()}")
    wrong = {}
    for lock in (BUILD, TEST, LLM):
        for package, version in locked(lock, this_platform()).items():
            try:
                installed = Version(importlib.metadata.version(package))
            except importlib.metadata.PackageNotFoundError:
                installed = None
            if installed != version:
                wrong[package] = f"locked {version}, installed {installed}"
    assert not wrong, f"this environment is not {TEST.name} ({wrong}): run `make venv`"


# --- every import declared ----------------------------------------------------------------


# Tools that run in a venv of their own, never in the test venv or on the device:
# tests/tools/export_campplus.py needs PyTorch (`make speaker-model`).
OWN_VENV = REPO / "tests" / "tools"


def imported_modules(*folders: str) -> set[str]:
    """Top-level names of every module imported by the Python files in ``folders``."""
    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            if OWN_VENV in path.parents:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "appliance", "web_ui", "tests"}


def undeclared(modules: set[str], declared: list[str]) -> set[str]:
    allowed = {canonicalize_name(Requirement(text).name) for text in declared}
    providers = importlib.metadata.packages_distributions()
    missing = set()
    for module in modules:
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & allowed:
            missing.add(f"{module} (from {', '.join(sorted(dists)) or 'no installed package'})")
    return missing


def test_the_appliance_imports_only_declared_packages():
    t = tables()
    extras = t["optional-dependencies"]
    declared = (t["dependencies"] + extras["bundled-model"] + extras["drafting"]
                + extras["bundled-llm"])
    missing = undeclared(imported_modules("appliance", "web_ui"), declared)
    assert not missing, f"imported but not in pyproject.toml's dependencies: {sorted(missing)}"


def test_the_tests_import_only_declared_packages():
    t = tables()
    declared = t["dependencies"] + [r for extra in t["optional-dependencies"].values() for r in extra]
    missing = undeclared(imported_modules("tests"), declared)
    assert not missing, f"imported by tests but not declared (test extra): {sorted(missing)}"
