"""The web bench's silent-connection section: latency with 200 idle TCP connections open.

Each probe opens a new TLS connection (as IT's monitoring or a browser's first
visit does), sends one request and reads the answer; a probe that gets no
answer within :data:`PROBE_TIMEOUT_S` counts as an error at that latency.
Measured twice in the same run: with no silent connections, then with
:data:`SILENT` connections open that send nothing or half a TLS hello (the
server's closures are reopened at once, so the number stays up).
"""

from __future__ import annotations

import http.client
import os
import time
from dataclasses import dataclass

from tests.browser.server import Server
from tests.support.silent import SilentClients

QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
SILENT = 200
PROBES = 20 if QUICK else 60
PROBE_TIMEOUT_S = 10.0
TARGET_MS = 1000.0
SETTLE_S = 1.0  # let the server accept the silent connections before probing


@dataclass
class Probes:
    """Fresh-connection latencies of one path, in ms (failures at the timeout)."""

    millis: list[float]
    errors: int = 0

    @property
    def p95(self) -> float:
        ordered = sorted(self.millis)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def probe(server: Server, cookie: str, path: str, count: int, ok: tuple[int, ...]) -> Probes:
    """``count`` requests for ``path``, each on a new TLS connection."""
    result = Probes([])
    for _ in range(count):
        started = time.perf_counter()
        conn = http.client.HTTPSConnection(server.host, server.port, timeout=PROBE_TIMEOUT_S,
                                           context=server.context)
        try:
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            response.read()
            failed = response.status not in ok
        except (OSError, http.client.HTTPException):
            failed = True
        finally:
            conn.close()
        elapsed = (time.perf_counter() - started) * 1000
        result.millis.append(PROBE_TIMEOUT_S * 1000 if failed else elapsed)
        result.errors += failed
    return result


def run(server: Server, cookie: str, paths: dict[str, str]) -> list[tuple[str, Probes, Probes]]:
    """For each named path: the probes with no silent connections, then with ``SILENT``."""
    # /healthz answers 503 (with reasons) in the bench: no recorder daemon runs here.
    ok = {name: (200, 503) if path == "/healthz" else (200,) for name, path in paths.items()}
    quiet = {name: probe(server, cookie, path, PROBES, ok[name]) for name, path in paths.items()}
    with SilentClients(server.port, SILENT):
        time.sleep(SETTLE_S)
        loud = {name: probe(server, cookie, path, PROBES, ok[name])
                for name, path in paths.items()}
    return [(name, quiet[name], loud[name]) for name in paths]


def report(rows: list[tuple[str, Probes, Probes]]) -> None:
    """Print the section's table: p95 with none open, with ``SILENT`` open, their ratio."""
    print(f"\nnew TLS connection per request, {PROBES} each; with {SILENT} silent TCP "
          f"connections open (half send one byte of a TLS hello; closed ones reopened)")
    print(f"{'request':34} {'p95 none':>9} {f'p95 {SILENT}':>9} {'ratio':>7} {'target':>8} "
          f"{'errors (none/' + str(SILENT) + ')':>17}")
    for name, quiet, loud in rows:
        ratio = loud.p95 / quiet.p95
        verdict = "ok" if loud.p95 < TARGET_MS and not loud.errors else "MISS"
        print(f"{name:34} {quiet.p95:9.1f} {loud.p95:9.1f} {ratio:6.1f}x "
              f"{f'<{TARGET_MS:.0f}':>8} {quiet.errors:13d}/{loud.errors:<3d} {verdict}")
