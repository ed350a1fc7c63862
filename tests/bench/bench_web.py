"""Benchmark the web page on loopback over TLS, served by gunicorn as installed.

Run from the repository root:  python -m tests.bench web   (or: make bench)

A data directory is seeded the way the appliance fills it (tests/support/seed.py):
1,000 transcribed sessions with draft notes (50-minute transcripts) and one
two-hour session (~1,500 segments). Then ``holdnote web`` starts gunicorn with
TLS and the default worker count on a free 127.0.0.1 port, a client logs
in, and each page is fetched over keep-alive HTTPS connections:

* baseline: a static file (app.css) and /healthz from the same server;
* the sessions list (first page of 50, and page 10);
* the session page with the two-hour transcript (target p95 < 150 ms);
* search across the 1,000 notes and transcripts, a rare and a common word
  (target < 300 ms), after one cold search that builds each worker's index;
* the session page with 20 concurrent clients: requests per second and
  errors (target: zero);
* /healthz and the session page, each request on a new TLS connection, with
  none and then 200 silent TCP connections open (p95 target < 1 s; see
  tests/bench/web_silent.py).

Latencies are wall time per request as the client sees it (TLS, gunicorn,
Flask, decryption, rendering); ratios are against the static-file p50 of the
same run. The data directory is on disk, as on the appliance (each page view
appends an fsynced audit entry); seeding happens in RAM first for speed.

Environment: HOLDNOTE_BENCH_QUICK=1 seeds 200 sessions with 10-minute
transcripts and makes fewer requests.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not

from appliance.access.keys import KeyStore  # noqa: E402
from appliance.store.db import Storage  # noqa: E402
from tests.bench import web_silent  # noqa: E402
from tests.browser.server import Server, free_port, init_tls, write_config  # noqa: E402
from tests.support import seed  # noqa: E402

QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
SESSIONS = 200 if QUICK else 1000
TRANSCRIPT_MINUTES = 10 if QUICK else 50
REQUESTS = 30 if QUICK else 150
CLIENTS = 20
CONCURRENT_REQUESTS = 200 if QUICK else 1000
RARE_WORD, RARE_EVERY = "kayak", 100  # in the notes of 1 % of sessions
COMMON_WORD = "sleep"  # said in nearly every session
DISTINCT_TRANSCRIPTS = 25  # generated once, encrypted afresh per session
TARGET_PAGE_MS, TARGET_SEARCH_MS = 150.0, 300.0
LATER_PAGE = min(10, SESSIONS // 50)  # a full page deep in the list (50 rows a page)


# --- seeding -------------------------------------------------------------------------


def seed_device(data_dir: Path, runtime_dir: Path) -> tuple[int, int]:
    """1,000 (or 200) transcribed sessions and one two-hour one: its id and segment count."""
    clock = seed.Clock()
    storage = Storage(data_dir, now=clock)
    seed.init_practice(storage, runtime_dir)
    recipient = KeyStore(storage, runtime_dir).recipient()
    results = [seed.transcript_result(TRANSCRIPT_MINUTES, seed=n)
               for n in range(DISTINCT_TRANSCRIPTS)]
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for n in range(SESSIONS):
        result = results[n % DISTINCT_TRANSCRIPTS]
        result = dataclasses.replace(result, note=_note(result.note, n))
        seed.add_session(storage, clock, recipient, label=f"Client {n:04d}",
                         started_at=start - timedelta(days=SESSIONS - n, hours=n % 7),
                         result=result, consent=n % 3 != 0)
    long = seed.transcript_result(120, seed=9999)
    long_id = seed.add_session(storage, clock, recipient, started_at=start - timedelta(hours=3),
                               label="Two-hour session", result=long, consent=True)
    storage.checkpoint()
    return long_id, len(long.segments)


def _note(note: dict, n: int) -> dict:
    sections = [dict(s) for s in note["sections"]]
    sections[0]["text"] = (f"Session {n}: client reports work stress and uneven mood; "
                           "practised grounding and reviewed the week.")
    if n % RARE_EVERY == 0:
        sections[0]["text"] += f" Mentions a {RARE_WORD} trip planned with a friend."
    return {**note, "sections": sections}


# --- a small HTTPS client --------------------------------------------------------------


class Client:
    """One keep-alive HTTPS connection carrying the login cookie."""

    def __init__(self, server: Server, cookie: str = ""):
        self.server = server
        self.cookie = cookie
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.server.host, self.server.port, timeout=60,
                                           context=self.server.context)

    def request(self, method: str, path: str, body: str | None = None
                ) -> tuple[int, dict, bytes]:
        """Send one request (reconnecting once if the server closed an idle connection)."""
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, dict(response.getheaders()), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = self._connect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[int, bytes]:
        status, _, data = self.request("GET", path)
        return status, data

    def close(self) -> None:
        self.conn.close()


def _cookie(headers: dict) -> str:
    value = headers.get("Set-Cookie", "")
    return value.split(";", 1)[0]


def log_in(server: Server) -> str:
    """Log in through the form (CSRF token and all); the cookie for later requests."""
    client = Client(server)
    _, headers, page = client.request("GET", "/login")
    client.cookie = _cookie(headers)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    form = urllib.parse.urlencode({"csrf_token": token, "username": seed.USER,
                                   "passphrase": seed.PASSPHRASE, "next": "/sessions"})
    status, headers, _ = client.request("POST", "/login", body=form)
    client.close()
    if status != 302 or "login" in headers.get("Location", "/login"):
        raise RuntimeError(f"login failed: HTTP {status}")
    return _cookie(headers)


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Figures:
    """Latencies of one kind of request."""

    name: str
    millis: list[float]
    errors: int = 0
    target_ms: float | None = None
    wall_s: float = 0.0
    size: int = 0  # bytes of the last answer

    @property
    def p50(self) -> float:
        return statistics.median(self.millis)

    @property
    def p95(self) -> float:
        ordered = sorted(self.millis)
        return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _answered(path: str, status: int) -> bool:
    # /healthz answers 503 with its reasons here: no recorder daemon runs in the bench.
    return status == 200 or (path == "/healthz" and status == 503)


def measure(client: Client, name: str, path: str, count: int, target: float | None = None,
            expect: bytes | None = None) -> Figures:
    """``count`` sequential requests for ``path``; non-200 answers count as errors."""
    figures = Figures(name, [], target_ms=target)
    for _ in range(count):
        started = time.perf_counter()
        status, body = client.get(path)
        figures.millis.append((time.perf_counter() - started) * 1000)
        figures.size = len(body)
        if not _answered(path, status) or (expect is not None and expect not in body):
            figures.errors += 1
    return figures


def concurrent(server: Server, cookie: str, name: str, path: str, clients: int,
               total: int) -> Figures:
    """``total`` requests for ``path`` from ``clients`` threads, each on its own connection."""
    figures = Figures(name, [])
    lock = threading.Lock()
    per_client = total // clients
    ready = threading.Barrier(clients + 1)

    def worker() -> None:
        client = Client(server, cookie)
        client.get("/static/app.css")  # TLS handshake outside the timed part
        ready.wait()
        for _ in range(per_client):
            started = time.perf_counter()
            try:
                status, _ = client.get(path)
            except (OSError, http.client.HTTPException):
                status = 0
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                figures.millis.append(elapsed)
                figures.errors += status != 200
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    figures.wall_s = time.perf_counter() - started
    return figures


def warm(client: Client, paths: list[str], workers: int) -> dict[str, float]:
    """Fetch each path until every worker has likely built its caches; the first fetch's ms."""
    first = {}
    for path in paths:
        for n in range(4 * workers):
            started = time.perf_counter()
            status, _ = client.get(path)
            if n == 0:
                first[path] = (time.perf_counter() - started) * 1000
            if not _answered(path, status):
                raise RuntimeError(f"{path}: HTTP {status}")
    return first


# --- the run -------------------------------------------------------------------------------


def _prepare(work: Path) -> tuple[Server, tuple[int, int], float]:
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    seeding = Path(tempfile.mkdtemp(prefix="holdnote-bench-seed-", dir=ram))
    try:
        started = time.perf_counter()
        long_session = seed_device(seeding / "data", work / "run")
        seed_s = time.perf_counter() - started
        shutil.copytree(seeding / "data", work / "data")
    finally:
        shutil.rmtree(seeding, ignore_errors=True)
    KeyStore(Storage(work / "data"), work / "run").lock()  # the login unlocks, as in use
    config = write_config(work / "holdnote.toml", work, work / "tls", free_port())
    server = Server(config, init_tls(config), work / "gunicorn.log")
    return server, long_session, seed_s


def worker_rss_mib(master_pid: int) -> list[float]:
    """Resident memory of each gunicorn worker (children of the master), in MiB."""
    sizes = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines()
                          if ":" in line)
        except OSError:  # the process ended meanwhile
            continue
        if int(fields.get("PPid", "0").strip()) == master_pid:
            sizes.append(int(fields["VmRSS"].split()[0]) / 1024)
    return sorted(sizes)


def _run(server: Server, long_id: int) -> tuple[list[Figures], Figures, Figures, dict]:
    """Every measurement but the silent-connection one (see :func:`main`)."""
    cookie = log_in(server)
    client = Client(server, cookie)
    workers = server.cfg.web.workers
    session = f"/sessions/{long_id}"
    rare, common = f"/search?q={RARE_WORD}", f"/search?q={COMMON_WORD}"
    cold = warm(client, ["/static/app.css", "/healthz", "/sessions", session, rare, common],
                workers)
    rows = [
        measure(client, "static file (baseline)", "/static/app.css", REQUESTS),
        measure(client, "/healthz", "/healthz", REQUESTS),
        measure(client, f"sessions list, page 1 of {SESSIONS + 1}", "/sessions", REQUESTS,
                TARGET_PAGE_MS, b"data-testid=\"session-row\""),
        measure(client, f"sessions list, page {LATER_PAGE}", f"/sessions?page={LATER_PAGE}",
                REQUESTS, TARGET_PAGE_MS, b"data-testid=\"session-row\""),
        measure(client, "session page, 2-hour transcript", session, REQUESTS, TARGET_PAGE_MS,
                b"data-testid=\"transcript\""),
        measure(client, f"search, rare word ({SESSIONS // RARE_EVERY} hits)", rare, REQUESTS,
                TARGET_SEARCH_MS, b"data-testid=\"search-hit\""),
        measure(client, f"search, common word (~{SESSIONS} hits)", common, REQUESTS,
                TARGET_SEARCH_MS, b"data-testid=\"search-hit\""),
    ]
    client.close()
    base_load = concurrent(server, cookie, "static file, 20 clients", "/static/app.css",
                           CLIENTS, CONCURRENT_REQUESTS)
    load = concurrent(server, cookie, "session page, 20 clients", session, CLIENTS,
                      CONCURRENT_REQUESTS)
    cold["rss"] = worker_rss_mib(server.process.pid)
    cold["silent"] = web_silent.run(server, cookie, {
        "/healthz": "/healthz", "session page, 2-hour transcript": session})
    return rows, base_load, load, cold


def _report(rows: list[Figures], base_load: Figures, load: Figures, cold: dict,
            seed_s: float, long_segments: int, workers: int) -> None:
    base = rows[0].p50
    print(f"web: gunicorn over TLS on 127.0.0.1, {workers} workers (gthread, TLS "
          f"handshake on the event loop); {SESSIONS} sessions with {TRANSCRIPT_MINUTES}-min "
          f"transcripts + one 2-hour ({long_segments} segments); {REQUESTS} sequential "
          f"requests each"
          f"{' [QUICK]' if QUICK else ''}")
    print(f"seeding took {seed_s:.0f} s; first search in a fresh worker (decrypts and indexes "
          f"every session): {cold.get(f'/search?q={RARE_WORD}', 0):.0f} ms")
    print(f"{'request':44} {'p50 ms':>8} {'p95 ms':>8} {'p50/base':>9} {'target':>8} "
          f"{'errors':>6} {'KiB':>6}")
    for row in rows:
        target = f"<{row.target_ms:.0f}" if row.target_ms else ""
        verdict = "" if not row.target_ms else (" ok" if row.p95 < row.target_ms else " MISS")
        print(f"{row.name:44} {row.p50:8.1f} {row.p95:8.1f} {row.p50 / base:8.1f}x "
              f"{target:>8} {row.errors:6d} {row.size / 1024:6.0f}{verdict}")
    for figures in (base_load, load):
        rps = len(figures.millis) / figures.wall_s
        print(f"{figures.name:44} {figures.p50:8.1f} {figures.p95:8.1f} {'':>9} "
              f"{'':>8} {figures.errors:6d}  {rps:.1f} req/s")
    ratio = (len(load.millis) / load.wall_s) / (len(base_load.millis) / base_load.wall_s)
    print(f"session page throughput / static-file throughput at {CLIENTS} clients: "
          f"{ratio:.2f}; errors under load: {load.errors}"
          f"{' (target 0: ok)' if load.errors == 0 else ' (target 0: MISS)'}")
    print("worker memory after the run (search index built): "
          + ", ".join(f"{mib:.0f} MiB" for mib in cold["rss"]))
    web_silent.report(cold["silent"])


def main() -> None:
    """Seed, serve, measure, print the table."""
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-web-") as tmp:
        work = Path(tmp)
        server, (long_id, segments), seed_s = _prepare(work)
        try:
            rows, base_load, load, cold = _run(server, long_id)
        finally:
            server.stop()
        _report(rows, base_load, load, cold, seed_s, segments, server.cfg.web.workers)


if __name__ == "__main__":
    main()
