"""Benchmark listening to a recording: the encrypted file played through the web page.

Run from the repository root:  python -m tests.bench playback   (or: make bench)

A two-hour mono 16 kHz recording (230 MB encrypted; noise, written with the age
StreamWriter as the recorder writes it) is put on disk in a fresh data directory;
``holdnote web`` serves it over TLS with gunicorn as installed, and a client logs in:

* time to the first audio byte after a seek to 1:30:00 (a ``Range: bytes=N-``
  request, as a browser sends it; target < 300 ms), on an open connection and on
  a new one (a browser seeking mid-download drops its connection), each against
  the first byte of a static file from the same server the same way;
* throughput of the whole file streamed without Range, against the stock
  ``age -d`` decrypting the same file to /dev/null (and, to show where the time
  goes, :class:`SeekableReader` decrypting it in the bench's own process);
* each gunicorn worker's resident memory while four clients stream the whole
  file at once, sampled every 50 ms, against the same worker idle ("flat":
  peak minus idle under 30 MiB).

Environment: HOLDNOTE_BENCH_QUICK=1 uses a ten-minute recording and seeks to 75 %.
"""

from __future__ import annotations

import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not

from appliance.access.keys import KeyStore, viewer  # noqa: E402
from appliance.age import SeekableReader, X25519Identity  # noqa: E402
from appliance.store.db import State, Storage  # noqa: E402
from tests.bench.bench_web import log_in, worker_rss_mib  # noqa: E402
from tests.browser.server import Server, free_port, init_tls, write_config  # noqa: E402
from tests.support import seed  # noqa: E402

QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
RATE = 16000
SECONDS = 10 * 60 if QUICK else 2 * 3600
SEEK_S = SECONDS * 3 // 4 if QUICK else 90 * 60
SEEKS = 20
STREAMS = 4
TARGET_FIRST_BYTE_MS = 300.0
FLAT_MIB = 30.0
HEADER = 44
BLOCK = 1024 * 1024


@dataclass
class Setup:
    """The served recording: session id, encrypted file, identity file, sizes."""

    session_id: int
    audio: Path
    keyfile: Path
    wav_bytes: int
    write_s: float


@dataclass
class Figures:
    """Everything measured."""

    seek_ms: list[float] = field(default_factory=list)
    static_ms: list[float] = field(default_factory=list)
    fresh_seek_ms: list[float] = field(default_factory=list)  # TLS handshake included
    fresh_static_ms: list[float] = field(default_factory=list)
    stream_mb_s: float = 0.0
    decrypt_mb_s: float = 0.0
    age_mb_s: float = 0.0
    idle_mib: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    parallel_s: float = 0.0
    errors: list[str] = field(default_factory=list)


# --- the recording --------------------------------------------------------------------------


def _noise(seconds: int):
    block = os.urandom(BLOCK)  # noise: the cipher does not care, the disk sees real size
    left = seconds * RATE * 2
    while left:
        yield block[:min(BLOCK, left)]
        left -= min(BLOCK, left)


def prepare(work: Path) -> Setup:
    """A data directory with one session whose recording waits for the night (device locked)."""
    clock = seed.Clock(datetime.now(UTC) - timedelta(hours=3))
    storage = Storage(work / "data", now=clock)
    seed.init_practice(storage, work / "run")
    keys = KeyStore(storage, work / "run")
    keyfile = work / "key.txt"
    keyfile.write_text(str(keys.identity()) + "\n", encoding="ascii")
    account = viewer(storage, seed.USER)
    session = storage.create_session(sample_rate=RATE, owner_id=account.user_id)
    started = time.perf_counter()
    seed.write_recording(session, keys.recipient(), _noise(SECONDS))
    write_s = time.perf_counter() - started
    clock.at += timedelta(seconds=SECONDS)
    storage.transition(session.id, State.RECORDED, ended_at=clock.at, duration_s=SECONDS)
    keys.lock()  # the login unlocks, as in use
    return Setup(session.id, session.audio_path, keyfile, HEADER + SECONDS * RATE * 2, write_s)


# --- requests ---------------------------------------------------------------------------------


def _connect(server: Server) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(server.host, server.port, timeout=120,
                                       context=server.context)


def first_byte_ms(conn: http.client.HTTPSConnection, path: str, cookie: str,
                  first: int | None = None, expect: int = 200) -> float:
    """Milliseconds from sending the request to holding the first body byte (the rest is read)."""
    headers = {"Cookie": cookie}
    if first is not None:
        headers["Range"] = f"bytes={first}-"
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read(1)
    elapsed = (time.perf_counter() - started) * 1000
    while response.read(BLOCK):
        pass
    if response.status != expect:
        raise RuntimeError(f"{path}: HTTP {response.status}, expected {expect}")
    return elapsed


def stream_whole(server: Server, path: str, cookie: str) -> int:
    """Read the whole file without Range on a new connection; the bytes read."""
    conn = _connect(server)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        total = 0
        while chunk := response.read(BLOCK):
            total += len(chunk)
        return total
    finally:
        conn.close()


def measure_seeks(server: Server, setup: Setup, cookie: str, figures: Figures) -> None:
    """First byte after a seek near SEEK_S (a few seconds apart), and of a static file.

    Once on an open connection, once on a new one: a browser that seeks while a
    range is still arriving drops that connection and opens another.
    """
    path = f"/sessions/{setup.session_id}/audio"
    conn = _connect(server)
    first_byte_ms(conn, "/static/app.css", cookie)  # TLS handshake outside the timing
    for n in range(SEEKS):
        offset = HEADER + (SEEK_S + 7 * n) * RATE * 2
        figures.static_ms.append(first_byte_ms(conn, "/static/app.css", cookie))
        figures.seek_ms.append(first_byte_ms(conn, path, cookie, offset, expect=206))
        for name, target, first, expect in (("fresh_static_ms", "/static/app.css", None, 200),
                                            ("fresh_seek_ms", path, offset, 206)):
            fresh = _connect(server)
            getattr(figures, name).append(first_byte_ms(fresh, target, cookie, first, expect))
            fresh.close()
    conn.close()


def measure_throughput(server: Server, setup: Setup, cookie: str, figures: Figures) -> None:
    """The whole file through the web page, and ``age -d`` of the same file."""
    path = f"/sessions/{setup.session_id}/audio"
    started = time.perf_counter()
    got = stream_whole(server, path, cookie)
    figures.stream_mb_s = got / 1e6 / (time.perf_counter() - started)
    if got != setup.wav_bytes:
        figures.errors.append(f"stream: {got} bytes, expected {setup.wav_bytes}")
    identity = X25519Identity.from_str(setup.keyfile.read_text(encoding="ascii").strip())
    started = time.perf_counter()
    with SeekableReader(setup.audio, [identity]) as reader:
        decrypted = sum(len(piece) for piece in reader.iter_range(0, reader.size))
    figures.decrypt_mb_s = decrypted / 1e6 / (time.perf_counter() - started)
    age = shutil.which("age")
    if age is None:
        figures.errors.append("the stock age CLI is not installed: no baseline")
        return
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run([age, "-d", "-i", str(setup.keyfile), str(setup.audio)], stdout=sink,
                       check=True)
    figures.age_mb_s = setup.wav_bytes / 1e6 / (time.perf_counter() - started)


def measure_memory(server: Server, setup: Setup, cookie: str, figures: Figures) -> None:
    """Worker RSS idle, then sampled while STREAMS clients read the whole file at once."""
    master = server.process.pid
    figures.idle_mib = worker_rss_mib(master)
    figures.peak_mib = list(figures.idle_mib)
    done = threading.Event()
    results: list[int] = []

    def client() -> None:
        try:
            results.append(stream_whole(server, f"/sessions/{setup.session_id}/audio", cookie))
        except (OSError, http.client.HTTPException, RuntimeError) as error:
            figures.errors.append(f"parallel stream: {error}")

    threads = [threading.Thread(target=client) for _ in range(STREAMS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    sampler = threading.Thread(target=_sample, args=(master, figures, done))
    sampler.start()
    for thread in threads:
        thread.join()
    figures.parallel_s = time.perf_counter() - started
    done.set()
    sampler.join()
    if results != [setup.wav_bytes] * STREAMS:
        figures.errors.append(f"parallel streams read {results} bytes")
    left_open = _open_handles(master, setup.audio)
    if left_open:
        figures.errors.append(f"{left_open} handle(s) on the recording left open after the streams")


def _open_handles(master: int, path: Path) -> int:
    """How many file descriptors of the workers (children of ``master``) point at ``path``."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"PPid:\t{master}\n" not in status.read_text():
                continue
            fds = list((status.parent / "fd").iterdir())
            count += sum(1 for fd in fds if os.readlink(fd) == str(path))
        except OSError:  # the process or descriptor went away meanwhile
            continue
    return count


def _sample(master: int, figures: Figures, done: threading.Event) -> None:
    while not done.wait(0.05):
        now = worker_rss_mib(master)
        if len(now) == len(figures.peak_mib):  # same workers (sorted by size: compare maxima)
            figures.peak_mib = [max(a, b) for a, b in zip(figures.peak_mib, now, strict=True)]


# --- the run ----------------------------------------------------------------------------------


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(setup: Setup, figures: Figures, workers: int) -> None:
    """Print the figures against their baselines and targets."""
    length = f"{SECONDS // 3600}-hour" if SECONDS % 3600 == 0 else f"{SECONDS // 60}-minute"
    size_mb = setup.audio.stat().st_size / 1e6
    print(f"playback: gunicorn over TLS on 127.0.0.1, {workers} workers; a {length} mono "
          f"16 kHz recording, {size_mb:.0f} MB encrypted (written in {setup.write_s:.1f} s)"
          f"{' [QUICK]' if QUICK else ''}")
    clock = time.strftime("%H:%M:%S", time.gmtime(SEEK_S))
    print(f"{'first byte':50} {'p50 ms':>8} {'p95 ms':>8} {'p50/base':>9} {'target':>8}")
    for how, static, seek in (("open connection", figures.static_ms, figures.seek_ms),
                              ("new TLS connection", figures.fresh_static_ms,
                               figures.fresh_seek_ms)):
        base, p50 = statistics.median(static), statistics.median(seek)
        verdict = "ok" if _p(seek, 0.95) < TARGET_FIRST_BYTE_MS else "MISS"
        print(f"{'static file (baseline), ' + how:50} {base:8.1f} {_p(static, 0.95):8.1f}")
        print(f"{f'audio after a seek to {clock}, {how}':50} {p50:8.1f} {_p(seek, 0.95):8.1f} "
              f"{p50 / base:8.1f}x {f'<{TARGET_FIRST_BYTE_MS:.0f}':>8} {verdict}")
    ratio = figures.stream_mb_s / figures.age_mb_s if figures.age_mb_s else 0.0
    print(f"whole file without Range: {figures.stream_mb_s:.0f} MB/s through the web page "
          f"(TLS); age -d of the same file: {figures.age_mb_s:.0f} MB/s; ratio {ratio:.2f} "
          f"(decryption alone, SeekableReader in this process: {figures.decrypt_mb_s:.0f} MB/s)")
    growth = [peak - idle for peak, idle in zip(figures.peak_mib, figures.idle_mib, strict=True)]
    flat = "flat: ok" if max(growth, default=0) < FLAT_MIB else "NOT flat: MISS"
    print(f"worker memory, {STREAMS} clients streaming the whole file at once "
          f"({STREAMS * setup.wav_bytes / 1e6 / figures.parallel_s:.0f} MB/s in all): idle "
          + ", ".join(f"{m:.0f}" for m in figures.idle_mib) + " MiB; peak "
          + ", ".join(f"{m:.0f}" for m in figures.peak_mib) + " MiB; growth "
          + ", ".join(f"{m:+.1f}" for m in growth) + f" MiB (target < {FLAT_MIB:.0f}: {flat})")
    for error in figures.errors:
        print(f"ERROR: {error}")


def main() -> None:
    """Write the recording, serve it, measure, print."""
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-playback-") as tmp:
        work = Path(tmp)
        setup = prepare(work)
        config = write_config(work / "holdnote.toml", work, work / "tls", free_port())
        server = Server(config, init_tls(config), work / "gunicorn.log")
        figures = Figures()
        try:
            cookie = log_in(server)
            measure_seeks(server, setup, cookie, figures)
            measure_throughput(server, setup, cookie, figures)
            measure_memory(server, setup, cookie, figures)
        finally:
            server.stop()
        report(setup, figures, server.cfg.web.workers)
        if figures.errors:
            sys.exit(1)


if __name__ == "__main__":
    main()
