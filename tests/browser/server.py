"""A real Holdnote web server for browser tests and the benchmark.

Started the way the appliance starts it: ``holdnote web`` with the
configuration file named by ``HOLDNOTE_CONFIG``, which execs gunicorn with
TLS, so the child process is the gunicorn master. Listens on a free port
on 127.0.0.1 only. The certificate is made with ``holdnote web init-tls``
and checked by its printed SHA-256 fingerprint rather than trusted blindly.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from appliance import config as config_mod

REPO = Path(__file__).resolve().parents[2]
# The installed console script, as the systemd unit runs it; from a bare
# checkout, the same entry point through the interpreter.
_SCRIPT = Path(sys.executable).parent / "holdnote"
HOLDNOTE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "appliance.app.cli"]
STARTUP_S = 60


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, root: Path, tls_dir: Path, port: int, **sections: dict) -> Path:
    """A configuration file for a server rooted in ``root`` (validated on the way)."""
    data: dict[str, dict] = {
        "paths": {"data_dir": str(root / "data"), "runtime_dir": str(root / "run"),
                  "recorder_socket": str(root / "run" / "recorder.sock")},
        # The key slots are opened at every login: keep scrypt cheap in tests.
        "security": {"scrypt_work_factor": 10},
        "web": {"bind": "127.0.0.1", "port": port,
                "tls_cert": str(tls_dir / "cert.pem"), "tls_key": str(tls_dir / "key.pem")},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    config_mod.from_dict(data)  # refuse a bad test configuration here, not in a worker
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Certificate:
    """The server certificate as ``holdnote web init-tls`` made it."""

    path: Path
    fingerprint: str  # "AB:CD:…", as printed
    spki_sha256_b64: str  # what Chromium's --ignore-certificate-errors-spki-list takes


def init_tls(config_path: Path) -> Certificate:
    """Run ``holdnote web init-tls`` and read the fingerprint it prints."""
    out = subprocess.run([*HOLDNOTE, "--config", str(config_path), "web", "init-tls"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    match = re.search(r"SHA-256 fingerprint:\s*([0-9A-F:]{95})", out.stdout)
    if match is None:
        raise RuntimeError(f"'holdnote web init-tls' printed no fingerprint: {out.stdout!r}")
    cfg = config_mod.load(config_path)
    pem = Path(cfg.web.tls_cert).read_bytes()
    spki = x509.load_pem_x509_certificate(pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Certificate(Path(cfg.web.tls_cert), match.group(1),
                       base64.b64encode(hashlib.sha256(spki).digest()).decode())


def tls_context(cert: Certificate) -> ssl.SSLContext:
    """A client context that trusts exactly this self-signed certificate."""
    context = ssl.create_default_context(cafile=str(cert.path))
    context.check_hostname = True
    return context


def served_fingerprint(host: str, port: int, context: ssl.SSLContext) -> str:
    """The SHA-256 fingerprint of the certificate the server presents."""
    with socket.create_connection((host, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class Server:
    """``holdnote web`` running as a child process; stop it with :meth:`stop`."""

    def __init__(self, config_path: Path, cert: Certificate, log_path: Path):
        self.config_path = config_path
        self.cfg = config_mod.load(config_path)
        self.cert = cert
        self.port = self.cfg.web.port
        self.host = "localhost"
        self.url = f"https://{self.host}:{self.port}"
        self.log_path = log_path
        self.context = tls_context(cert)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, HOLDNOTE_CONFIG=str(config_path), PYTHONUNBUFFERED="1")
        # The command the systemd unit runs (there: /opt/holdnote/bin/holdnote web).
        self.process = subprocess.Popen([*HOLDNOTE, "web"], cwd=REPO, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 40) -> str:
        """The last lines gunicorn wrote (for failure messages)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self) -> None:
        import http.client

        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"holdnote web exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=5,
                                                   context=self.context)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 503):  # 503: serving, and reporting a problem (no recorder)
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)  # polling a child process that gives no other signal
        raise RuntimeError(f"holdnote web did not answer within {STARTUP_S} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM to the gunicorn master (what systemd sends); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode
