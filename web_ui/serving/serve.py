"""``holdnote web``: serve the web page with gunicorn over TLS; ``web init-tls``.

gunicorn loads ``web_ui:create_app()`` in each worker, which reads the
configuration named by ``HOLDNOTE_CONFIG``. So the workers see exactly the
configuration this process was given (a file, or one built by the demo), it
is written as TOML into the RAM-only runtime directory first.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from appliance import config as config_mod
from appliance.config import ENV_VAR, Config
from appliance.fsutil import atomic_write
from appliance.store.db import Storage
from web_ui.serving import secret, tls

log = logging.getLogger(__name__)

APP = "web_ui:create_app()"
CONFIG_COPY = "web-config.toml"


def init_tls(cfg: Config, force: bool = False) -> str:
    """Create the self-signed certificate and key unless present; the SHA-256 fingerprint."""
    cert_path, key_path = Path(cfg.web.tls_cert), Path(cfg.web.tls_key)
    if not force and cert_path.exists() and key_path.exists():
        return tls.fingerprint(tls.load(cert_path))
    fingerprint = tls.make_certificate(cert_path, key_path)
    log.info("created TLS certificate %s (SHA-256 %s)", cert_path, fingerprint)
    return fingerprint


def write_config(cfg: Config) -> Path:
    """Write the effective configuration where the workers will read it."""
    runtime = Path(cfg.paths.runtime_dir)
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = runtime / CONFIG_COPY
    atomic_write(path, config_mod.to_toml(cfg).encode("utf-8"), mode=0o600)
    return path


def gunicorn_command(cfg: Config) -> tuple[list[str], dict[str, str]]:
    """The gunicorn command line and environment for this configuration.

    Prepares what the workers need first: the certificate, the database
    schema, the cookie key (so all workers share one) and the configuration file.
    """
    if not (Path(cfg.web.tls_cert).exists() and Path(cfg.web.tls_key).exists()):
        init_tls(cfg)
    # Migrate once here, before the workers start: workers opening a fresh
    # database at the same moment would both try to create the tables.
    Storage(cfg.paths.data_dir)
    secret.load_or_create(Path(cfg.paths.data_dir))
    env = dict(os.environ, **{ENV_VAR: str(write_config(cfg))})
    bind = f"[{cfg.web.bind}]" if ":" in cfg.web.bind else cfg.web.bind
    argv = [
        sys.executable, "-m", "gunicorn",
        "--config", f"python:{__package__}.gunicorn_conf",
        "--certfile", str(cfg.web.tls_cert),
        "--keyfile", str(cfg.web.tls_key),
        "--bind", f"{bind}:{cfg.web.port}",
        "--workers", str(cfg.web.workers),
        "--access-logfile", "-",
        APP,
    ]
    return argv, env


def spawn(cfg: Config, **popen_args) -> subprocess.Popen:
    """Start gunicorn as a child process (for the demo, tests and benchmarks)."""
    argv, env = gunicorn_command(cfg)
    return subprocess.Popen(argv, env=env, **popen_args)


def run(cfg: Config) -> int:
    """Replace this process with gunicorn (what the systemd unit runs).

    exec rather than a child process, so systemd's main PID is gunicorn's
    master and its SIGTERM reaches it directly for a graceful stop.
    """
    argv, env = gunicorn_command(cfg)
    log.info("serving https on %s:%s with %d workers", cfg.web.bind, cfg.web.port,
             cfg.web.workers)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)  # noqa: S606 - argv[0] is sys.executable
    return 1  # not reached: execve replaces the process or raises
