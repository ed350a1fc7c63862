"""The recorder's control socket: JSON lines over a Unix socket.

One JSON object per line each way. A request is ``{"cmd": "status" | "start" |
"stop" | "mark"}``; the reply is the recorder's status (``ok``, ``state``,
``session_id``, ``elapsed_s``, ``free_bytes``, ``free_hours``, ``error``,
``bookmarks``, ...). The socket file is owner-only (0600): the web UI and the
overnight job run as the same system user as the recorder.

:class:`ControlServer` is the daemon's side; :func:`send` is what
``holdnote record``, the web UI and the overnight job call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

from appliance.errors import RecorderError, RecorderUnavailableError

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
IDLE_CONNECTION_S = 30.0
# A timeout for start/stop/mark: they wait for fsyncs (session row, key, file,
# final chunk), which a busy SD card can stretch to seconds. status is instant.
COMMAND_TIMEOUT = 30.0

Handler = Callable[[dict], dict]


def _encode(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class _Connection(socketserver.StreamRequestHandler):
    """Answers each request line of one client connection."""

    timeout = IDLE_CONNECTION_S
    server: _Server

    def handle(self) -> None:
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except (OSError, TimeoutError):
                return
            if not line:
                return
            if len(line) > MAX_LINE:
                self._skip_rest_of_line(line)
                self._reply({"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                continue
            if line.strip():
                self._reply(self.server.answer(line))

    def _skip_rest_of_line(self, line: bytes) -> None:
        # Read the oversized request to its end: closing with unread input would
        # reset the connection and the client would never see the answer.
        while line and not line.endswith(b"\n"):
            try:
                line = self.rfile.readline(MAX_LINE)
            except (OSError, TimeoutError):
                return

    def _reply(self, obj: dict) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(_encode(obj))
            self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # A client with a timeout connects non-blocking: with a full backlog (the
    # default is 5) a burst of web workers and CLI calls would get EAGAIN.
    request_queue_size = 64
    handler: Handler

    def answer(self, line: bytes) -> dict:
        """Parse one request and run the handler; never raises."""
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "bad request: not a JSON object on one line"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "bad request: expected a JSON object"}
        try:
            return self.handler(request)
        except Exception as error:  # a client must always get a line back
            log.exception("control request %r failed", request.get("cmd"))
            return {"ok": False, "error": f"internal error: {error}"}


class ControlServer:
    """Serves ``handler`` on a Unix socket at ``path`` from background threads."""

    def __init__(self, path: Path, handler: Handler):
        self.path = Path(path)
        self.handler = handler
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (owner-only) and serve; refuses if another recorder answers there."""
        ensure_not_running(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # stale: nobody answered on it
        # The umask closes the window between bind() and chmod() in which the
        # socket would be connectable by others. Start-up is single-threaded
        # here, so changing the process umask briefly is safe.
        old_umask = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), _Connection)
        except OSError as error:
            raise RecorderError(
                f"cannot create the control socket {self.path}: {error.strerror}; "
                "check paths.recorder_socket and that its directory belongs to this user"
            ) from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        self._server.handler = self.handler
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="holdnote-control", daemon=True,
        )
        self._thread.start()
        log.info("control socket at %s", self.path)

    def close(self) -> None:
        """Stop serving and remove the socket file."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ensure_not_running(path: Path) -> None:
    """Raise :class:`RecorderError` if a recorder already answers on ``path``."""
    try:
        reply = send(path, {"cmd": "status"}, timeout=2.0)
    except RecorderUnavailableError:
        return
    raise RecorderError(
        f"another recorder is already running on {path} (state {reply.get('state')}); "
        "stop it first (systemctl stop holdnote-recorder)"
    )


def _read_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        part = sock.recv(65536)
        if not part:
            break
        data += part
        if len(data) > 16 * MAX_LINE:
            raise RecorderUnavailableError("the recorder's reply is implausibly long")
    return bytes(data)


def send(socket_path: str | os.PathLike, command: dict, timeout: float = 5.0) -> dict:
    """Send one command to the recorder and return its reply.

    Raises :class:`RecorderUnavailableError` when nobody answers (no daemon,
    stale socket, no permission, timeout, or a reply that is not JSON).
    """
    path = Path(socket_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(_encode(command))
            raw = _read_line(sock)
    except FileNotFoundError:
        raise RecorderUnavailableError(
            f"the recorder is not running (no control socket at {path}); "
            "start it with 'systemctl start holdnote-recorder'") from None
    except ConnectionRefusedError:
        raise RecorderUnavailableError(
            f"the recorder is not running (nobody listens on {path})") from None
    except PermissionError:
        raise RecorderUnavailableError(
            f"no permission to use {path}: run this as the holdnote user "
            "(sudo -u holdnote holdnote record status)") from None
    except TimeoutError:
        raise RecorderUnavailableError(
            f"the recorder did not answer within {timeout:g} s on {path}") from None
    except OSError as error:
        raise RecorderUnavailableError(f"cannot reach the recorder on {path}: {error}") from None
    if not raw.strip():
        raise RecorderUnavailableError(f"the recorder on {path} closed without answering")
    try:
        reply = json.loads(raw)
    except ValueError:
        raise RecorderUnavailableError(
            f"the recorder on {path} answered with invalid JSON") from None
    if not isinstance(reply, dict):
        raise RecorderUnavailableError(f"the recorder on {path} answered with invalid JSON")
    return reply


def recorder_status(socket_path: str | os.PathLike, timeout: float = 2.0) -> dict:
    """The recorder daemon's status reply, or ``ok: false, state: unavailable`` with the reason.

    For pages and progress lines that must show something rather than fail.
    """
    try:
        reply = send(socket_path, {"cmd": "status"}, timeout=timeout)
    except (RecorderUnavailableError, OSError) as error:
        return {"ok": False, "state": "unavailable", "error": str(error)}
    return reply if isinstance(reply, dict) else {"ok": False, "state": "unavailable",
                                                    "error": "unexpected reply"}
