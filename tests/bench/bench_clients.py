"""Benchmark the client page and the client analytics with 100 sessions.

Run from the repository root:  python -m tests.bench clients   (or: make bench)

A data directory is seeded the way the appliance fills it (tests/support/seed.py):
one client of dr.rivera with 100 assigned sessions, each a transcribed
50-minute session (synthetic conversation, ~650 lines), with two treatment goals.

(a) The page, served by gunicorn over TLS as installed (the bench_web.py server
    and client, default worker count), sequential keep-alive requests after each
    worker has computed the page once: the client page against the sessions list
    of the same device (target p95 < 200 ms). The first view in a fresh worker,
    which decrypts the 100 transcripts and computes everything, is printed apart.
(b) In process: themes + trends + language cues + goals recomputed for the 100
    transcripts (target < 1 s), against decrypting the same 100 transcripts with
    age (the baseline) and parsing them.

Environment: HOLDNOTE_BENCH_QUICK=1 seeds 30 sessions of 20 minutes and makes fewer requests.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not

from appliance import age  # noqa: E402
from appliance.access.keys import KeyStore  # noqa: E402
from appliance.clients.analysis import analyse  # noqa: E402
from appliance.clients.lines import SessionText  # noqa: E402
from appliance.clients.records import ClientRecord, seal_record  # noqa: E402
from appliance.store.db import Storage  # noqa: E402
from appliance.transcript import TranscriptResult  # noqa: E402
from tests.bench.bench_web import Client, Figures, log_in, measure, warm  # noqa: E402
from tests.browser.server import Server, free_port, init_tls, write_config  # noqa: E402
from tests.support import seed  # noqa: E402

QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
SESSIONS = 30 if QUICK else 100
MINUTES = 20 if QUICK else 50
REQUESTS = 20 if QUICK else 100
DISTINCT = 20  # transcripts generated once, encrypted afresh per session
ROUNDS = 3 if QUICK else 5
GOALS = ("Sleep through the night without waking", "Return to work full time")
TARGET_PAGE_MS, TARGET_RECOMPUTE_S = 200.0, 1.0


def seed_device(data_dir: Path, runtime_dir: Path) -> tuple[int, int]:
    """The client and its sessions; (client id, transcript lines in all)."""
    clock = seed.Clock()
    storage = Storage(data_dir, now=clock)
    seed.init_practice(storage, runtime_dir)
    keys = KeyStore(storage, runtime_dir)
    recipient = keys.recipient()
    owner = next(u.id for u in keys.users() if u.username == seed.USER)
    client_id = storage.create_client(owner, seal_record(
        ClientRecord("B.K.", "BK-100", goals=GOALS), recipient))
    results = [seed.transcript_result(MINUTES, seed=n, flags=n % 4 == 0)
               for n in range(DISTINCT)]
    start = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0)
    lines = 0
    for n in range(SESSIONS):
        result = results[n % DISTINCT]
        sid = seed.add_session(storage, clock, recipient, label=f"B.K. {n:03d}",
                               started_at=start - timedelta(days=7 * (SESSIONS - n)),
                               result=result, consent=True)
        storage.assign_client(sid, client_id)
        lines += len(result.segments)
    storage.checkpoint()
    return client_id, lines


def _prepare(work: Path) -> tuple[Server, int, int, float]:
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    seeding = Path(tempfile.mkdtemp(prefix="holdnote-bench-clients-", dir=ram))
    try:
        started = time.perf_counter()
        client_id, lines = seed_device(seeding / "data", work / "run")
        seed_s = time.perf_counter() - started
        shutil.copytree(seeding / "data", work / "data")
    finally:
        shutil.rmtree(seeding, ignore_errors=True)
    KeyStore(Storage(work / "data"), work / "run").lock()  # the login unlocks, as in use
    config = write_config(work / "holdnote.toml", work, work / "tls", free_port())
    return Server(config, init_tls(config), work / "gunicorn.log"), client_id, lines, seed_s


def page_figures(server: Server, client_id: int) -> tuple[list[Figures], float]:
    """(a): the sessions list and the client page; and the first client-page view's ms."""
    client = Client(server, log_in(server))
    page = f"/clients/{client_id}"
    first = warm(client, ["/sessions", page], server.cfg.web.workers)[page]
    rows = [measure(client, "sessions list, page 1 (baseline)", "/sessions", REQUESTS,
                    expect=b'data-testid="session-row"'),
            measure(client, f"client page, {SESSIONS} sessions", page, REQUESTS,
                    TARGET_PAGE_MS, b'data-testid="theme-link"')]
    client.close()
    return rows, first


def recompute_figures(data_dir: Path, runtime_dir: Path, client_id: int) -> dict[str, float]:
    """(b): seconds to decrypt, to parse, and to analyse the client's transcripts (medians)."""
    storage = Storage(data_dir)
    keys = KeyStore(storage, runtime_dir)
    keys.unlock(seed.USER, seed.PASSPHRASE)
    identity = keys.identity()
    sessions = storage.client_sessions(client_id)
    blobs = [storage.load_transcript(s.id) or b"" for s in sessions]
    timings: dict[str, list[float]] = {"decrypt": [], "parse": [], "analyse": []}
    for _ in range(ROUNDS):
        started = time.perf_counter()
        plain = [age.decrypt(blob, [identity]) for blob in blobs]
        timings["decrypt"].append(time.perf_counter() - started)
        started = time.perf_counter()
        results = [TranscriptResult.from_bytes(p) for p in plain]
        timings["parse"].append(time.perf_counter() - started)
        texts = [SessionText(s.id, s.started_at.date(), r) for s, r in zip(sessions, results,
                                                                            strict=True)]
        started = time.perf_counter()
        analysis = analyse(texts, GOALS)
        timings["analyse"].append(time.perf_counter() - started)
    figures = {name: statistics.median(values) for name, values in timings.items()}
    figures["themes"] = len(analysis.themes)
    figures["words"] = sum(len(seg.text.split()) for r in results for seg in r.segments)
    keys.lock()
    return figures


def report(rows: list[Figures], first_ms: float, recompute: dict[str, float], lines: int,
           seed_s: float, workers: int) -> None:
    """Print the table."""
    print(f"clients: gunicorn over TLS on 127.0.0.1, {workers} workers; one client with "
          f"{SESSIONS} sessions of {MINUTES} min ({lines} lines, {recompute['words']:.0f} "
          f"words); {REQUESTS} sequential requests each{' [QUICK]' if QUICK else ''}")
    print(f"seeding took {seed_s:.0f} s; first client-page view in a fresh worker (decrypts "
          f"and analyses every transcript): {first_ms:.0f} ms")
    base = rows[0].p50
    print(f"{'request':40} {'p50 ms':>8} {'p95 ms':>8} {'p50/base':>9} {'target':>8} {'errors':>6}")
    for row in rows:
        target = f"<{row.target_ms:.0f}" if row.target_ms else ""
        verdict = "" if not row.target_ms else (" ok" if row.p95 < row.target_ms else " MISS")
        print(f"{row.name:40} {row.p50:8.1f} {row.p95:8.1f} {row.p50 / base:8.1f}x "
              f"{target:>8} {row.errors:6d}{verdict}")
    verdict = "ok" if recompute["analyse"] < TARGET_RECOMPUTE_S else "MISS"
    print(f"{'recompute, ' + str(SESSIONS) + ' transcripts':40} {'seconds':>8} {'/decrypt':>9}")
    for name, label in (("decrypt", "decrypt with age (baseline)"), ("parse", "parse the JSON"),
                        ("analyse", "themes + trends + cues + goals")):
        print(f"{label:40} {recompute[name]:8.3f} {recompute[name] / recompute['decrypt']:8.1f}x"
              f"{'  target <1 s: ' + verdict if name == 'analyse' else ''}")
    print(f"({recompute['themes']:.0f} themes found; medians of {ROUNDS} rounds)")


def main() -> None:
    """Seed, serve, measure, print the table."""
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-clients-") as tmp:
        work = Path(tmp)
        server, client_id, lines, seed_s = _prepare(work)
        try:
            rows, first = page_figures(server, client_id)
        finally:
            server.stop()
        recompute = recompute_figures(work / "data", work / "run", client_id)
        report(rows, first, recompute, lines, seed_s, server.cfg.web.workers)


if __name__ == "__main__":
    main()
