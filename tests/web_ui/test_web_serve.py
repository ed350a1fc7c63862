"""``holdnote web init-tls``, the cookie key, and the real gunicorn over TLS."""

from __future__ import annotations

import http.cookiejar
import ipaddress
import os
import re
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from appliance import config as config_mod
from appliance.access.setup_code import SetupCodes
from appliance.store.db import MIGRATIONS, Storage
from tests.conftest import PASSPHRASE, REPO, USER, make_config, need_tool
from tests.support.silent import SilentClients
from web_ui.serving import secret, serve, tls


def _write_config(cfg, path: Path) -> Path:
    path.write_text(config_mod.to_toml(cfg))
    return path


def test_config_survives_the_trip_to_the_workers(tmp_path):
    cfg = make_config(tmp_path, web={"allowed_networks": ["100.64.0.0/10"], "port": 9443},
                      transcription={"model_dir": str(tmp_path / "model")})
    assert config_mod.load(_write_config(cfg, tmp_path / "c.toml")) == cfg
    written = serve.write_config(cfg)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert config_mod.load(written) == cfg


def test_init_tls_makes_a_certificate_for_every_name_of_the_device(cfg):
    fingerprint = serve.init_tls(cfg)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint)
    assert stat.S_IMODE(cfg.web.tls_key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cfg.web.tls_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    host = socket.gethostname().lower().split(".")[0]
    assert {"localhost", host, f"{host}.local"} <= names
    ips = set(san.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= ips
    assert set(tls.lan_addresses()) <= ips
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 826


def test_init_tls_is_idempotent_unless_forced(cfg):
    first = serve.init_tls(cfg)
    pem = cfg.web.tls_cert.read_bytes()
    assert serve.init_tls(cfg) == first and cfg.web.tls_cert.read_bytes() == pem
    assert serve.init_tls(cfg, force=True) != first


def test_the_fingerprint_matches_what_openssl_reports(cfg):
    openssl = need_tool("openssl")
    fingerprint = serve.init_tls(cfg)
    out = subprocess.run([openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in",
                          str(cfg.web.tls_cert)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split("=", 1)[1] == fingerprint


def test_holdnote_web_init_tls_prints_the_fingerprint(cfg, tmp_path):
    path = _write_config(cfg, tmp_path / "holdnote.toml")
    out = subprocess.run([sys.executable, "-m", "appliance.app.cli", "--config", str(path), "web",
                          "init-tls"], capture_output=True, text=True, cwd=REPO, check=True)
    fingerprint = tls.fingerprint(tls.load(cfg.web.tls_cert))
    assert f"SHA-256 fingerprint: {fingerprint}" in out.stdout


def test_a_damaged_certificate_is_reported_clearly(cfg):
    cfg.web.tls_cert.parent.mkdir(parents=True)
    cfg.web.tls_cert.write_text("not a certificate")
    cfg.web.tls_key.write_text("not a key")
    with pytest.raises(Exception, match="init-tls --force"):
        serve.init_tls(cfg)


def test_the_command_prepares_what_every_worker_needs(cfg):
    argv, env = serve.gunicorn_command(cfg)
    assert argv[-1] == "web_ui:create_app()"
    assert f"127.0.0.1:{cfg.web.port}" in argv or f"0.0.0.0:{cfg.web.port}" in argv
    assert config_mod.load(env[config_mod.ENV_VAR]) == cfg
    assert cfg.web.tls_cert.exists() and cfg.web.tls_key.exists()
    assert (cfg.paths.data_dir / secret.SECRET_FILE).exists()
    # The schema exists before two workers race to create it.
    with sqlite3.connect(cfg.paths.data_dir / "holdnote.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_all_workers_share_one_cookie_key(tmp_path):
    keys, threads = [], []
    for _ in range(8):
        thread = threading.Thread(target=lambda: keys.append(secret.load_or_create(tmp_path)))
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    path = tmp_path / secret.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.load_or_create(tmp_path) == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == [secret.SECRET_FILE], "no temporary left"


# --- the real thing ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class _Reply:
    status: int
    url: str
    headers: dict
    body: str


class _Client:
    """urllib over TLS, verifying the device's own certificate, with a cookie jar."""

    def __init__(self, base: str, cafile: Path, log: Path | None = None):
        context = ssl.create_default_context(cafile=str(cafile))
        self.base = base
        self.log = log
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, fields: dict | None = None, headers: dict | None = None,
             timeout: float = 90):
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return _Reply(response.status, response.url, dict(response.headers),
                              response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return _Reply(error.code, error.url, dict(error.headers), error.read().decode())
        except urllib.error.URLError as error:
            if self.log is None:
                raise
            raise AssertionError(f"{path}: {error.reason}; gunicorn said:\n"
                                 f"{self.log.read_text()[-3000:]}") from None

    def get(self, path: str, **kwargs) -> _Reply:
        return self.open(path, **kwargs)

    def post(self, path: str, fields: dict) -> _Reply:
        return self.open(path, fields)

    def token(self, path: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).body).group(1)


def _wait_until_served(proc, cfg, log: Path) -> _Client:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
        if cfg.web.tls_cert.exists():  # 'holdnote web' makes it when missing
            client = _Client(f"https://localhost:{cfg.web.port}", cfg.web.tls_cert)
            try:
                # 503 is an answer too: /healthz reports the recorder, not running in tests.
                if client.get("/healthz").status in (200, 503):
                    client.log = log
                    return client
            except (urllib.error.URLError, ConnectionError, ssl.SSLError):
                pass
        time.sleep(0.2)


@pytest.fixture
def served(tmp_path):
    """``holdnote web`` (gunicorn over TLS, two workers) on a free loopback port."""
    cfg = make_config(tmp_path, web={"bind": "127.0.0.1", "port": _free_port(), "workers": 2})
    path = _write_config(cfg, tmp_path / "holdnote.toml")
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.app.cli", "--config", str(path), "web"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield cfg, _wait_until_served(proc, cfg, log), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_gunicorn_serves_setup_and_login_over_tls(served):
    cfg, client, proc = served
    health = client.get("/healthz")
    assert health.headers["Strict-Transport-Security"]
    assert '"setup_done":false' in health.body.replace(" ", "")
    code = SetupCodes(Storage(cfg.paths.data_dir)).issue()
    page = client.post("/setup", {"csrf_token": client.token("/setup"), "code": code,
                                  "username": USER, "passphrase": PASSPHRASE,
                                  "repeat": PASSPHRASE})
    assert "AGE-SECRET-KEY-1" in page.body
    # Both workers accept the login (they share the cookie key and the login table).
    for _ in range(12):
        response = client.get("/sessions")
        assert response.status == 200 and response.url.endswith("/sessions")
    assert client.get("/login", headers={"Host": "evil.example"}).status == 400
    # SIGTERM stops gunicorn (the exec'd 'holdnote web' process) cleanly.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


@pytest.mark.slow
def test_gunicorn_refuses_plain_http(served):
    cfg, _, _ = served
    with socket.create_connection(("127.0.0.1", cfg.web.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            reply = sock.recv(200)
        except ConnectionResetError:  # the failed handshake closes the connection at once
            reply = b""
    assert b"setup_done" not in reply and not reply.startswith(b"HTTP/1.1 200")
    assert os.path.exists(cfg.web.tls_key)


def _tls_connection(cfg) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(cfg.web.tls_cert))
    raw = socket.create_connection(("localhost", cfg.web.port), timeout=30)
    return context.wrap_socket(raw, server_hostname="localhost")


@pytest.mark.slow
def test_clients_leaving_after_the_handshake_do_not_break_later_forms(served):
    """Nothing is written after the handshake (no session tickets), so a client that left
    early cannot leave a failed write behind (it broke form bodies on trixie)."""
    cfg, client, _ = served
    with _tls_connection(cfg) as tls:
        assert tls.version() == "TLSv1.3"
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = b"".join(iter(lambda: tls.recv(65536), b""))
        assert reply.startswith(b"HTTP/1.1 ")
        assert not tls.session.has_ticket
    for _ in range(5):  # a certificate check, a browser's spare connection
        _tls_connection(cfg).close()
    answers = [client.post("/login", {"username": USER}) for _ in range(10)]
    # Each body was read: the CSRF check answered (no token sent), not a generic 400.
    assert all("This form has expired" in a.body for a in answers), [a.body[:200] for a in answers]


SILENT_CONNECTIONS = 200
PROBE_TIMEOUT_S = 30  # an answer at all, not a speed: unpatched gthread never answered


@pytest.mark.slow
def test_silent_connections_do_not_stall_the_page(served):
    """200 connections that send nothing or half a TLS hello; the page still answers."""
    cfg, client, proc = served
    with SilentClients(cfg.web.port, SILENT_CONNECTIONS):
        for path in ("/healthz", "/login", "/healthz"):
            # A new connection each time, as a probe from IT's monitoring would make.
            probe = _Client(client.base, cfg.web.tls_cert)
            try:
                reply = probe.open(path, timeout=PROBE_TIMEOUT_S)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                pytest.fail(f"{path} did not answer within {PROBE_TIMEOUT_S} s while "
                            f"{SILENT_CONNECTIONS} silent connections were open: {error}")
            assert reply.status in (200, 503), reply
            assert "setup_done" in reply.body or "passphrase" in reply.body.lower()
    assert proc.poll() is None
