"""The ``holdnote`` command: its help, its words, and how it fails.

Every test runs the real entry point as a process on real files: a real
database (damaged by overwriting pages, as a failing SD card does), the real
recorder daemon on a thread (mock pins, a WAV file for the microphone) behind
its real control socket.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance import config as config_mod
from appliance.app import cli
from appliance.recorder import control
from appliance.recorder.capture import WavFileSource
from appliance.recorder.daemon import run_daemon
from appliance.store.db import DB_NAME, Storage
from tests.conftest import REPO


def holdnote(*args: str, stdin: str | None = None, env: dict | None = None,
             stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """``holdnote ARGS`` as a process, the way an administrator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "appliance.app.cli", *args], input=stdin, stdout=stdout,
        stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120,
        env={**os.environ, **(env or {})})


def write_config(cfg: config_mod.Config, tmp_path: Path) -> str:
    path = tmp_path / "holdnote.toml"
    path.write_text(config_mod.to_toml(cfg))
    return str(path)


def assert_one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The command failed with ``code`` and said so in one line holding ``words``."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("holdnote: "), result.stderr
    for word in words:
        assert word in lines[0], f"{word!r} missing from: {lines[0]}"
    return lines[0]


# --- help ---------------------------------------------------------------------------------------


def test_help_describes_holdnote_not_its_source_module():
    result = holdnote("--help")
    assert result.returncode == 0
    description = result.stdout.split("\n\n")[1]
    assert "records therapy sessions" in description
    assert "``" not in result.stdout and "entry point" not in result.stdout


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, described.get(name), sub


def test_every_command_and_option_is_described():
    undescribed = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        undescribed.extend(f"{path} {action.dest}" for action in parser._actions
                           if action.help is None
                           and not isinstance(action, argparse._SubParsersAction))
        for name, summary, sub in _subcommands(parser):
            if not summary:
                undescribed.append(f"{path} {name}")
            walk(sub, f"{path} {name}")

    walk(cli.build_parser(), "holdnote")
    assert undescribed == []


def test_keys_help_describes_all_its_commands():
    text = holdnote("keys", "--help").stdout
    listing = text.split("positional arguments:\n", 1)[1].split("\n\n")[0]
    described: dict[str, str] = {}
    for row in listing.splitlines()[1:]:  # below the line naming the argument itself
        if row.startswith("    ") and not row.startswith("     "):  # a command's own line
            name, _, summary = row.strip().partition(" ")
            described[name] = summary.strip()
        else:  # the summary wrapped, or began on the next line
            described[name] = (described[name] + " " + row.strip()).strip()
    assert {"init", "add-user", "remove-user", "change-passphrase", "recover", "unlock",
            "lock", "status"} <= set(described)
    assert [name for name, summary in described.items() if not summary] == []


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("keys", "status"), ("check-config",)])
def test_a_config_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path, command):
    path = tmp_path / "holdnote.toml"
    path.write_bytes('[speakers]\nclinician_name = "Dr. Müller"\n'.encode("latin-1"))
    if command == ("check-config",):
        result = holdnote(*command, str(path))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert str(path) in result.stderr and "not UTF-8" in result.stderr
        assert "line 2" in result.stderr
    else:
        assert_one_line(holdnote("--config", str(path), *command), 2, str(path), "not UTF-8",
                        "line 2")


def test_refused_settings_stop_every_command_with_exit_2(tmp_path, cfg):
    path = tmp_path / "holdnote.toml"
    path.write_text(config_mod.to_toml(cfg).replace('bind = "0.0.0.0"',
                                                    'bind = "holdnote.local"'))
    result = holdnote("--config", str(path), "keys", "status")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(path) in result.stderr
    assert "web.bind: 'holdnote.local' is not an IP address" in result.stderr


# --- a damaged database -------------------------------------------------------------------------


def damage_pages(database: Path, tables: tuple[str, ...]) -> None:
    """Overwrite the root pages of ``tables`` with junk, as a failing card might."""
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                              (table,)).fetchone()[0] for table in tables]
    conn.close()
    with database.open("r+b") as handle:
        for page in pages or [1]:
            handle.seek((page - 1) * size)
            handle.write(bytes([0xA5]) * size)


@pytest.mark.parametrize("tables", [("audit", "users"), ()], ids=["table pages", "file header"])
@pytest.mark.parametrize("command", [("audit", "verify"), ("keys", "status")])
def test_a_damaged_database_is_named_with_how_to_restore_it(
        tmp_path, cfg, audit, recovery_key, command, tables):
    audit.append("dr.rivera", "login")
    config = write_config(cfg, tmp_path)
    database = Path(cfg.paths.data_dir) / DB_NAME
    damage_pages(database, tables)
    line = assert_one_line(holdnote("--config", config, *command), 1, str(database),
                           "damaged", "backup", "systemctl stop")
    assert "recovery key" in line


# --- files that are not what they should be -----------------------------------------------------


def test_a_binary_identity_file_is_named(tmp_path, cfg, recovery_key):
    identity = Path(cfg.paths.runtime_dir) / "identity.txt"
    identity.write_bytes(bytes(range(256)))
    result = holdnote("--config", write_config(cfg, tmp_path), "keys", "add-user", "dr.lee",
                      stdin="another long passphrase\n")
    assert_one_line(result, 1, str(identity), "damaged", "unlock")


def test_a_wav_with_an_unknown_format_tag_is_one_clear_line(tmp_path, cfg):
    path = tmp_path / "odd.wav"
    fmt = (0x1234).to_bytes(2, "little") + bytes.fromhex("0100803e0000007d00000200 1000")
    data = bytes(32000)
    body = (b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
            + b"data" + len(data).to_bytes(4, "little") + data)
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    result = holdnote("--config", write_config(cfg, tmp_path), "transcribe-file", str(path))
    assert_one_line(result, 1, str(path), "cannot decode", "WAV")


# --- holdnote record ----------------------------------------------------------------------------


def write_noise_wav(path: Path, seconds: float = 2.0) -> Path:
    samples = np.random.default_rng(7).integers(-3000, 3000, int(16000 * seconds))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


@pytest.fixture
def recorder(tmp_path, cfg, recovery_key):
    """The real recorder daemon on a thread: mock pins, a looping WAV as the microphone."""
    stop = threading.Event()
    source = WavFileSource(write_noise_wav(tmp_path / "mic.wav"), loop=True)
    thread = threading.Thread(target=run_daemon, args=(cfg,), kwargs={
        "pin_factory": MockFactory(), "source": source, "stop_event": stop})
    thread.start()
    try:
        control_ready(cfg)
        yield cfg
    finally:
        stop.set()
        thread.join(30)


def control_ready(cfg) -> None:
    ready = threading.Event()
    for _ in range(600):
        try:
            control.send(cfg.paths.recorder_socket, {"cmd": "status"}, timeout=1.0)
            return
        except control.RecorderUnavailableError:
            ready.wait(0.05)
    raise AssertionError("the recorder did not answer")


def midday_zone() -> tuple[str, timedelta]:
    """A POSIX TZ in which it is about noon now, so no sentence crosses midnight."""
    behind = datetime.now(UTC).hour - 12
    return f"HNT{behind:+d}", timedelta(hours=-behind)


def test_record_speaks_in_sentences_and_keeps_json_for_scripts(tmp_path, recorder):
    config = write_config(recorder, tmp_path)
    zone, offset = midday_zone()
    run = lambda *args: holdnote("--config", config, "record", *args, env={"TZ": zone})  # noqa: E731

    started = run("start")
    assert started.returncode == 0, started.stderr
    session = Storage(recorder.paths.data_dir).get_session(1)
    since = (session.started_at + offset).strftime("%H:%M")
    assert started.stdout.startswith(f"Recording session 1 since {since} (")
    status = run("status")
    assert status.stdout.startswith(f"Recording session 1 since {since} (")
    assert "h of audio." in status.stdout and "{" not in status.stdout

    assert run("stop").returncode == 0
    ended = Storage(recorder.paths.data_dir).get_session(1).ended_at
    idle = f"Idle; last session 1 ended {(ended + offset).strftime('%H:%M')}."
    assert run("status").stdout.splitlines()[0] == idle

    refused = run("stop")
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[0] == idle and "not recording" not in refused.stdout
    assert refused.stderr.strip() == "holdnote: record stop refused: not recording"

    reply = json.loads(run("status", "--json").stdout)
    assert (reply["state"], reply["last_session_id"]) == ("idle", 1)


def test_record_status_into_a_closed_pipe_ends_quietly(tmp_path, recorder):
    config = write_config(recorder, tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before holdnote writes: `| head` that quit
    try:
        result = holdnote("--config", config, "record", "status", stdout=write_end)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141  # as a shell reports a program ended by SIGPIPE


# --- holdnote draft and transcribe-file --llm ---------------------------------------------------


def test_an_llm_that_is_not_a_path_or_a_known_name_is_one_clear_line(tmp_path, cfg):
    wav = write_noise_wav(tmp_path / "noise.wav")
    result = holdnote("--config", write_config(cfg, tmp_path), "transcribe-file", str(wav),
                      "--llm", "qwen2.5")
    assert_one_line(result, 2, "--llm", "qwen2.5", "bundled-smollm2", ".gguf")


def test_drafting_a_session_that_does_not_exist_is_one_clear_line(tmp_path, cfg):
    result = holdnote("--config", write_config(cfg, tmp_path), "draft", "--session", "41")
    assert_one_line(result, 1, "41")


def test_draft_needs_to_know_which_notes(tmp_path, cfg):
    result = holdnote("--config", write_config(cfg, tmp_path), "draft")
    assert result.returncode == 2 and "--queued" in result.stderr
