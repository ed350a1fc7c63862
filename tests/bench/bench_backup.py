"""Benchmark `holdnote backup now` against `sqlite3 .backup` plus the stock `age` CLI.

Run from the repository root:  python -m tests.bench backup   (or: make bench)

A data directory is seeded the way the appliance fills it (tests/support/seed.py):
1,000 transcribed sessions with 50-minute transcripts and draft notes, plus a few
sessions whose recording is kept (25 minutes each at 8 kHz, 24 MB encrypted), a
TLS certificate and the configuration. Seeding happens in RAM; the backup reads
the copy on disk, as on the appliance. Then, in the same run:

* baseline: ``sqlite3 holdnote.db ".backup snap.db"``, then ``tar`` of the snapshot,
  the recordings, the configuration and the certificate piped into
  ``age -r <practice recipient>``: what IT could script by hand;
* ``holdnote backup now`` (a child process, as the backup unit runs it): snapshot
  with SQLite's online backup API, streamed tar into age, fsync, rename, then the
  check of the new file (full decryption: the device is unlocked, as in the day);
* ``holdnote backup verify FILE`` on its own;
* ``holdnote backup list``: the interpreter and imports alone, for memory.

Figures: wall time, the file's size (and per session), and peak resident memory
(ru_maxrss of each child; for the pipeline, its processes added, since they run
at the same time). Ratios are against the baseline of the same run. Memory
should not grow with the data: compare the quick and the full run.

Environment: HOLDNOTE_BENCH_QUICK=1 seeds 100 sessions with 10-minute transcripts
and one 5-minute recording.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not

from appliance.access.audit import AuditLog  # noqa: E402
from appliance.access.keys import KeyStore  # noqa: E402
from appliance.store.db import DB_NAME, RECORDINGS, Storage  # noqa: E402
from tests.browser.server import HOLDNOTE, free_port, init_tls, write_config  # noqa: E402
from tests.support import seed  # noqa: E402

QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"
SESSIONS = 100 if QUICK else 1000
TRANSCRIPT_MINUTES = 10 if QUICK else 50
KEPT_RECORDINGS = 1 if QUICK else 4
RECORDING_MINUTES = 5 if QUICK else 25
DISTINCT_TRANSCRIPTS = 10 if QUICK else 25  # generated once, encrypted afresh per session
# Audit entries per session (opened, note edited, exported): the chain the backup checks.
AUDIT_PER_SESSION = ("session.view", "note.edit", "session.export")
ALL_SESSIONS = SESSIONS + KEPT_RECORDINGS  # what sizes per session divide by
MIB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    """One measured command (or pipeline)."""

    name: str
    seconds: float
    peak_kib: int  # ru_maxrss; summed over a pipeline's processes
    size: int = 0  # bytes of the file it wrote, if any
    said: str = ""  # its standard output


# --- seeding -------------------------------------------------------------------------


def seed_device(data_dir: Path, runtime_dir: Path) -> None:
    """The sessions, notes and kept recordings described in the module docstring."""
    clock = seed.Clock()
    storage = Storage(data_dir, now=clock)
    seed.init_practice(storage, runtime_dir)
    audit = AuditLog(storage)
    audit.append(seed.USER, "setup.done", source="web", detail=seed.USER)  # as the setup page
    recipient = KeyStore(storage, runtime_dir).recipient()
    results = [seed.transcript_result(TRANSCRIPT_MINUTES, seed=n)
               for n in range(DISTINCT_TRANSCRIPTS)]
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for n in range(SESSIONS):
        result = seed.with_first_section(results[n % DISTINCT_TRANSCRIPTS],
                                         f"Session {n}: reports work stress; practised grounding.")
        session_id = seed.add_session(storage, clock, recipient, label=f"Client {n:04d}",
                                      started_at=start - timedelta(days=SESSIONS - n, hours=n % 7),
                                      result=result, consent=n % 3 != 0)
        for action in AUDIT_PER_SESSION:
            audit.append(seed.USER, action, session_id=session_id, source="web")
    kept = seed.transcript_result(RECORDING_MINUTES, seed=4242)
    for n in range(KEPT_RECORDINGS):
        seed.add_recorded_session(storage, clock, recipient, result=kept,
                                  started_at=start - timedelta(hours=KEPT_RECORDINGS - n),
                                  label=f"Kept recording {n}")
    storage.checkpoint()


def prepare(work: Path) -> tuple[Path, str, float]:
    """Seed (in RAM, then copied to disk): the configuration file, recipient, seconds."""
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    seeding = Path(tempfile.mkdtemp(prefix="holdnote-bench-seed-", dir=ram))
    try:
        started = time.perf_counter()
        seed_device(seeding / "data", work / "run")
        seed_s = time.perf_counter() - started
        shutil.copytree(seeding / "data", work / "data")
    finally:
        shutil.rmtree(seeding, ignore_errors=True)
    (work / "target").mkdir()
    config = write_config(work / "holdnote.toml", work, work / "tls", free_port(),
                          backup={"target_dir": str(work / "target"), "require_mount": False})
    init_tls(config)
    recipient = str(KeyStore(Storage(work / "data"), work / "run").recipient())
    return config, recipient, seed_s


# --- measuring -----------------------------------------------------------------------


def _gnu_time() -> str | None:
    """GNU time, which reports a child's peak memory from a process of 1 MB."""
    path = shutil.which("time", path="/usr/bin:/bin")
    if path is None:
        return None
    probe = subprocess.run([path, "-f", "%M", "true"], capture_output=True, text=True)
    return path if probe.returncode == 0 and probe.stderr.strip().isdigit() else None


# A child's ru_maxrss starts at the RSS of the process that forked it (Linux keeps the
# pre-exec high-water mark), so a child of this 100+ MB bench would report at least that.
# GNU time forks from 1 MB; without it, wait4 here gives upper bounds (said in the report).
TIME = _gnu_time()


def run_measured(name: str, *commands: list[str], cwd: Path, output: Path | None = None) -> Run:
    """Run COMMANDS as a pipeline (each one's stdout into the next's stdin); time, memory.

    Peak memory is each process's own maximum resident set, summed: they run together.
    """
    with tempfile.TemporaryDirectory() as tmp:
        reports = [Path(tmp) / f"{n}.maxrss" for n in range(len(commands))]
        said = open(Path(tmp) / "stdout", "w+")  # noqa: SIM115 - closed below
        started = time.perf_counter()
        procs: list[subprocess.Popen] = []
        for n, argv in enumerate(commands):
            last = n == len(commands) - 1
            wrapped = [TIME, "-f", "%M", "-o", str(reports[n]), *argv] if TIME else argv
            procs.append(subprocess.Popen(
                wrapped, cwd=cwd, stdin=procs[-1].stdout if procs else subprocess.DEVNULL,
                stdout=said if last else subprocess.PIPE, stderr=subprocess.PIPE))
            if n:
                procs[-2].stdout.close()  # only the next process holds the pipe now
        peak, failures = 0, []
        for proc, report in zip(procs, reports):
            error = proc.stderr.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            peak += int(report.read_text().split()[-1]) if TIME else usage.ru_maxrss
            if proc.returncode:
                failures.append(f"{argv[0]} exited {proc.returncode}: {error.decode()[-2000:]}")
        seconds = time.perf_counter() - started
        said.seek(0)
        text = said.read().strip()
        said.close()
    if failures:
        raise RuntimeError(f"{name}: " + "; ".join(failures))
    return Run(name, seconds, peak, output.stat().st_size if output else 0, text)


def baseline(work: Path, recipient: str) -> tuple[Run, Run]:
    """``sqlite3 .backup``, then tar of the same files piped through ``age -r``."""
    for tool in ("sqlite3", "age", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench backup: the {tool} command is not installed")
    snap = work / "snap.db"
    snapshot = run_measured("sqlite3 .backup", ["sqlite3", str(work / "data" / DB_NAME),
                                                f".backup {snap}"], cwd=work)
    out = work / "baseline.tar.age"
    members = ["snap.db", f"data/{RECORDINGS}", "holdnote.toml", "tls"]
    encrypt = run_measured("tar | age -r", ["tar", "-cf", "-", *members],
                           ["age", "-r", recipient, "-o", str(out)], cwd=work, output=out)
    started = time.perf_counter()
    subprocess.run(["sync", str(out)], check=True)  # ours fsyncs its file: so does this
    return snapshot, dataclasses.replace(
        encrypt, seconds=encrypt.seconds + time.perf_counter() - started)


def holdnote(config: Path, work: Path) -> tuple[Run, Run, Run]:
    """``holdnote backup now``, then ``backup verify`` of its file, then ``backup list``."""
    cli = [*HOLDNOTE, "--config", str(config), "backup"]
    # Also in the environment: the backup takes the configuration file it carries from
    # there (or /etc/holdnote), not from --config.
    os.environ["HOLDNOTE_CONFIG"] = str(config)
    target = work / "target"
    made = run_measured("holdnote backup now", [*cli, "now"], cwd=ROOT)
    files = sorted(target.glob("holdnote-backup-*.age"))
    if len(files) != 1:
        raise RuntimeError(f"expected one backup file in {target}, found {files}")
    made = dataclasses.replace(made, size=files[0].stat().st_size)
    verified = run_measured("holdnote backup verify FILE", [*cli, "verify", str(files[0])],
                            cwd=ROOT)
    listed = run_measured("holdnote backup list", [*cli, "list"], cwd=ROOT)
    return made, verified, listed


# --- the report --------------------------------------------------------------------------


def data_sizes(work: Path) -> tuple[int, int]:
    """Bytes of the database and of the recordings on the device."""
    data = work / "data"
    recordings = sum(p.stat().st_size for p in (data / RECORDINGS).glob("*.age"))
    return (data / DB_NAME).stat().st_size, recordings


def report(rows: list[Run], base_s: float, base_kib: int, base_size: int,
           sizes: tuple[int, int], seed_s: float) -> None:
    db, recordings = sizes
    print(f"backup: {SESSIONS} sessions with {TRANSCRIPT_MINUTES}-min transcripts and draft "
          f"notes, {KEPT_RECORDINGS} kept recording(s) of {RECORDING_MINUTES} min; database "
          f"{db / MIB:.1f} MiB, recordings {recordings / MIB:.1f} MiB"
          f"{' [QUICK]' if QUICK else ''}")
    print(f"seeding took {seed_s:.0f} s; baseline = sqlite3 .backup + tar | age -r "
          f"({base_s:.2f} s, {base_kib / 1024:.0f} MiB peak, {base_size / MIB:.1f} MiB)")
    if TIME is None:
        print("(GNU time not installed: peak memory includes this bench's own, an upper bound)")
    print(f"{'command':34} {'seconds':>8} {'x base':>7} {'peak MiB':>9} {'x base':>7} "
          f"{'MiB':>8} {'KiB/session':>12}")
    for row in rows:
        size = f"{row.size / MIB:8.1f} {row.size / 1024 / ALL_SESSIONS:12.1f}" if row.size else ""
        print(f"{row.name:34} {row.seconds:8.2f} {row.seconds / base_s:6.2f}x "
              f"{row.peak_kib / 1024:9.0f} {row.peak_kib / base_kib:6.2f}x {size}")


def main() -> None:
    """Seed, run the baseline and ours on the same data, print the table."""
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-backup-") as tmp:
        work = Path(tmp)
        config, recipient, seed_s = prepare(work)
        snapshot, encrypt = baseline(work, recipient)
        base = Run("baseline: sqlite3, tar | age", snapshot.seconds + encrypt.seconds,
                   max(snapshot.peak_kib, encrypt.peak_kib), encrypt.size)
        made, verified, listed = holdnote(config, work)
        report([snapshot, encrypt, base, made, verified, listed], base.seconds, base.peak_kib,
               base.size, data_sizes(work), seed_s)
        work_s = made.seconds - listed.seconds  # less the interpreter's start and imports
        print(f"holdnote backup now less the command's start-up (backup list): {work_s:.2f} s "
              f"= {work_s / base.seconds:.2f}x base; less its memory: "
              f"{(made.peak_kib - listed.peak_kib) / 1024:.0f} MiB")
        # Per session without the recordings, which dominate once a few are kept.
        print(f"backup file per session, recordings excluded: "
              f"{(made.size - data_sizes(work)[1]) / 1024 / ALL_SESSIONS:.1f} KiB "
              f"(baseline {(base.size - data_sizes(work)[1]) / 1024 / ALL_SESSIONS:.1f} KiB)")
        print(f"holdnote backup now said: {made.said}")
        print(f"holdnote backup verify said: {verified.said}")


if __name__ == "__main__":
    main()
