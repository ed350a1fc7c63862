"""Service start and stop latency, as systemd sees it.

What the unit settings lean on: how long ``holdnote recorder`` takes to send
READY=1 (Type=notify; the start timeout and the watchdog must be well above it),
how long ``holdnote web`` takes until the health check answers over TLS, and how
long each takes to exit after SIGTERM (TimeoutStopSec). Figures are ratios
against a bare interpreter start (``python -c pass``) measured in the same run.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance import config as config_mod
from appliance.app.demo import healthz_answers

REPEATS_QUICK, REPEATS_FULL = 2, 5


def make_config(root: Path, port: int) -> Path:
    """A configuration in ``root``, serving on ``port``."""
    data, run = root / "data", root / "run"
    text = (config_mod.render_template()
            .replace('data_dir = "/var/lib/holdnote"', f'data_dir = "{data}"')
            .replace('runtime_dir = "/run/holdnote"', f'runtime_dir = "{run}"')
            .replace('recorder_socket = "/run/holdnote/recorder.sock"',
                     f'recorder_socket = "{run}/recorder.sock"')
            .replace('tls_cert = "/var/lib/holdnote/tls/cert.pem"', f'tls_cert = "{data}/cert.pem"')
            .replace('tls_key = "/var/lib/holdnote/tls/key.pem"', f'tls_key = "{data}/key.pem"')
            .replace("port = 8443", f"port = {port}")
            .replace("min_free_mb = 1024", "min_free_mb = 50")
            .replace("stop_free_mb = 200", "stop_free_mb = 20"))  # must stay below min_free_mb
    path = root / "holdnote.toml"
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def interpreter_start() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def stop(proc: subprocess.Popen) -> float:
    started = time.perf_counter()
    proc.terminate()
    proc.wait(60)
    return time.perf_counter() - started


def recorder_cycle(conf: Path, root: Path) -> tuple[float, float]:
    """Seconds to READY=1 on a notify socket, then seconds to exit after SIGTERM."""
    notify_path = root / "notify.sock"
    notify_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(60)
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), GPIOZERO_PIN_FACTORY="mock")
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "appliance.app.cli", "--config", str(conf),
                                 "recorder"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while b"READY=1" not in notify.recv(4096):
            pass
        ready = time.perf_counter() - started
    return ready, stop(proc)


def web_cycle(conf: Path, port: int) -> tuple[float, float]:
    """Seconds until /healthz answers over TLS, then seconds to exit after SIGTERM."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "appliance.app.cli", "--config", str(conf), "web"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthz_answers(port):
        if proc.poll() is not None:
            raise RuntimeError("holdnote web exited during start-up")
        time.sleep(0.05)
    ready = time.perf_counter() - started
    return ready, stop(proc)


def main() -> None:
    repeats = REPEATS_QUICK if os.environ.get("HOLDNOTE_BENCH_QUICK") == "1" else REPEATS_FULL
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        conf = make_config(root, port)
        subprocess.run([sys.executable, "-m", "appliance.app.cli", "--config", str(conf), "web",
                        "init-tls"], check=True, stdout=subprocess.DEVNULL)
        base = statistics.median(interpreter_start() for _ in range(repeats))
        recorder = [recorder_cycle(conf, root) for _ in range(repeats)]
        web = [web_cycle(conf, port) for _ in range(repeats)]
    rows = [
        ("python -c pass (baseline)", base),
        ("recorder: start -> READY=1", statistics.median(r for r, _ in recorder)),
        ("recorder: SIGTERM -> exit", statistics.median(s for _, s in recorder)),
        ("web: start -> /healthz over TLS", statistics.median(r for r, _ in web)),
        ("web: SIGTERM -> exit", statistics.median(s for _, s in web)),
    ]
    print(f"install/services: median of {repeats} runs (ratio = x the bare interpreter start)")
    print(f"  {'what':34s} {'seconds':>8s} {'ratio':>7s}")
    for name, seconds in rows:
        print(f"  {name:34s} {seconds:8.2f} {seconds / base:6.1f}x")
    print("  unit limits: recorder WatchdogSec=30, TimeoutStopSec=30; web TimeoutStopSec=20")


if __name__ == "__main__":
    main()
