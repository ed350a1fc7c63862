"""systemd integration: sd_notify messages on a real datagram socket, journald vs stderr,
and whether NTP has set the clock since boot."""

from __future__ import annotations

import logging
import os
import socket
import stat
from pathlib import Path

import pytest

from appliance import service


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; yields a reader."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    def read() -> str:
        return sock.recv(4096).decode()

    yield read
    sock.close()


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_messages_reach_systemd(notify_socket):
    service.ready("Idle, 41 h of space")
    assert notify_socket() == "READY=1\nSTATUS=Idle, 41 h of space"
    service.status("Recording 00:12:31")
    assert notify_socket() == "STATUS=Recording 00:12:31"
    service.watchdog()
    assert notify_socket() == "WATCHDOG=1"
    service.extend_timeout(1.5)
    assert notify_socket() == "EXTEND_TIMEOUT_USEC=1500000"
    service.stopping()
    assert notify_socket() == "STOPPING=1"


def test_outside_systemd_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert service.notify("READY=1") is False
    service.ready()  # and nothing breaks


def test_watchdog_interval_is_half_the_timeout(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert service.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert service.watchdog_interval() == 15.0


def test_watchdog_meant_for_another_process_is_ignored(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert service.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert service.watchdog_interval() is None


def test_logs_go_to_stderr_in_a_terminal(monkeypatch, root_logging, capsys):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    service.setup_logging()
    logging.getLogger("holdnote.test").warning("disk at %d%%", 91)
    assert "WARNING holdnote.test: disk at 91%" in capsys.readouterr().err
    assert root_logging.level == logging.INFO


def test_logs_go_to_journald_under_systemd(monkeypatch, root_logging):
    from systemd.journal import JournalHandler

    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    service.setup_logging(verbose=True)
    assert [type(h) for h in root_logging.handlers] == [JournalHandler]
    assert root_logging.level == logging.DEBUG
    # Without a journald socket here the record is dropped silently, not raised.
    logging.getLogger("holdnote.test").info("recording started")


# --- the clock --------------------------------------------------------------------------


def _timedatectl(tmp_path: Path, answer: str, code: int = 0) -> str:
    """A stand-in ``timedatectl`` that prints ``answer`` for ``show -p NTPSynchronized``."""
    script = tmp_path / "timedatectl"
    script.write_text("#!/bin/sh\n"
                      '[ "$1 $2 $3 $4" = "show -p NTPSynchronized --value" ] || exit 9\n'
                      f"echo '{answer}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_the_timesyncd_marker_means_synchronised(tmp_path):
    marker = tmp_path / "synchronized"
    marker.touch()
    assert service.clock_synchronised(marker, _timedatectl(tmp_path, "no")) is True


@pytest.mark.parametrize("answer,expected", [("yes", True), ("no", False)])
def test_timedatectl_answers_when_there_is_no_marker(tmp_path, answer, expected):
    tool = _timedatectl(tmp_path, answer)
    assert service.clock_synchronised(tmp_path / "absent", tool) is expected


def test_unknown_where_neither_can_tell(tmp_path):
    absent = tmp_path / "absent"
    assert service.clock_synchronised(absent, None) is None
    assert service.clock_synchronised(absent, str(tmp_path / "no-such-tool")) is None
    # timedatectl without a reachable timedated (a container without systemd)
    failing = _timedatectl(tmp_path, "Failed to connect to bus: Host is down", code=1)
    assert service.clock_synchronised(absent, failing) is None
