"""The control socket: JSON lines, owner-only, and a client that says when nobody answers."""

from __future__ import annotations

import json
import logging
import socket
import stat
import threading

import pytest

from appliance.app import cli
from appliance.errors import RecorderError, RecorderUnavailableError
from appliance.recorder.control import ControlServer, send


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "run" / "recorder.sock"


@pytest.fixture
def server(sock_path):
    """A control server whose handler echoes the command with a pretend state."""
    seen: list[dict] = []

    def handler(request: dict) -> dict:
        seen.append(request)
        if request.get("cmd") == "explode":
            raise RuntimeError("boom")
        return {"ok": request.get("cmd") != "stop", "state": "idle", "cmd": request.get("cmd")}

    srv = ControlServer(sock_path, handler)
    srv.start()
    srv.seen = seen
    yield srv
    srv.close()


def raw_exchange(path, payload: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_round_trip(server, sock_path):
    assert send(sock_path, {"cmd": "status"}) == {"ok": True, "state": "idle", "cmd": "status"}
    assert server.seen == [{"cmd": "status"}]


def test_socket_is_owner_only(server, sock_path):
    mode = stat.S_IMODE(sock_path.stat().st_mode)
    assert stat.S_ISSOCK(sock_path.stat().st_mode)
    assert mode == 0o600


def test_several_requests_on_one_connection(server, sock_path):
    replies = raw_exchange(sock_path, b'{"cmd":"status"}\n\n{"cmd":"mark"}\n')
    assert [r["cmd"] for r in replies] == ["status", "mark"]


@pytest.mark.parametrize("payload, message", [
    (b"status\n", "not a JSON object"),
    (b"[1, 2]\n", "expected a JSON object"),
    (b"{" + b'"x":1,' * 20000 + b'"y":2}\n', "longer than"),
], ids=["not-json", "not-an-object", "too-long"])
def test_bad_requests_get_an_answer_not_silence(server, sock_path, payload, message):
    (reply, after) = raw_exchange(sock_path, payload + b'{"cmd":"status"}\n')
    assert reply["ok"] is False and message in reply["error"]
    assert after["ok"] is True  # the connection carries on after a bad line


def test_handler_failure_is_answered_and_the_server_lives_on(server, sock_path):
    reply = send(sock_path, {"cmd": "explode"})
    assert reply["ok"] is False and "boom" in reply["error"]
    assert send(sock_path, {"cmd": "status"})["ok"] is True


def test_concurrent_clients_are_all_answered(server, sock_path):
    replies: list[dict] = []
    threads = [threading.Thread(target=lambda: replies.append(send(sock_path, {"cmd": "status"})))
               for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(replies) == 10 and all(r["ok"] for r in replies)


def test_a_second_server_refuses_while_the_first_answers(server, sock_path):
    with pytest.raises(RecorderError, match="already running"):
        ControlServer(sock_path, lambda r: {}).start()
    assert send(sock_path, {"cmd": "status"})["ok"] is True  # the first is untouched


def test_close_removes_the_socket(sock_path):
    srv = ControlServer(sock_path, lambda r: {"ok": True})
    srv.start()
    srv.close()
    assert not sock_path.exists()


def test_stale_socket_file_is_replaced(sock_path):
    sock_path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays behind, as after a crash
    srv = ControlServer(sock_path, lambda r: {"ok": True, "state": "idle"})
    srv.start()
    try:
        assert send(sock_path, {"cmd": "status"})["ok"] is True
    finally:
        srv.close()


# --- the client when nobody answers -----------------------------------------------------------


def test_no_socket_means_not_running(sock_path):
    with pytest.raises(RecorderUnavailableError, match="not running.*systemctl start"):
        send(sock_path, {"cmd": "status"})


def test_stale_socket_means_not_running(sock_path):
    sock_path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()
    with pytest.raises(RecorderUnavailableError, match="nobody listens"):
        send(sock_path, {"cmd": "status"})


def mute_listener(path, reply: bytes | None):
    """A listener that accepts and then answers ``reply`` (or never answers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    done = threading.Event()

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            if reply is not None:
                conn.sendall(reply)
                conn.shutdown(socket.SHUT_WR)
            done.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, done, thread


@pytest.mark.parametrize("reply, message", [
    (None, "did not answer within 0.3 s"),
    (b"", "closed without answering"),
    (b"<html>\n", "invalid JSON"),
    (b"[]\n", "invalid JSON"),
], ids=["silent", "hangs-up", "html", "json-list"])
def test_unhelpful_peers_raise_unavailable(sock_path, reply, message):
    listener, done, thread = mute_listener(sock_path, reply)
    try:
        with pytest.raises(RecorderUnavailableError, match=message):
            send(sock_path, {"cmd": "status"}, timeout=0.3)
    finally:
        done.set()
        thread.join(5)
        listener.close()


# --- holdnote record --------------------------------------------------------------------------


@pytest.fixture
def root_logging():
    """cli.main() sets up logging for a process; put the test process's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def write_config(tmp_path, sock_path):
    path = tmp_path / "holdnote.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
                    f'runtime_dir = "{tmp_path / "run"}"\nrecorder_socket = "{sock_path}"\n')
    return path


def test_holdnote_record_prints_the_reply(server, sock_path, tmp_path, capsys, root_logging):
    config = write_config(tmp_path, sock_path)
    assert cli.main(["--config", str(config), "record", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "idle"
    assert cli.main(["--config", str(config), "record", "stop"]) == 1  # ok: false -> exit 1


def test_holdnote_record_without_daemon_says_so(sock_path, tmp_path, capsys, root_logging):
    config = write_config(tmp_path, sock_path)
    assert cli.main(["--config", str(config), "record", "start"]) == 1
    assert "recorder is not running" in capsys.readouterr().err
