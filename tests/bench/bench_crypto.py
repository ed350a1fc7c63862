"""Benchmark appliance.age streaming against the stock age CLI, in the same run.

Run from the repository root:  python tests/bench/bench_crypto.py

Environment:
  HOLDNOTE_BENCH_MB      plaintext size in MiB (default 256)
  HOLDNOTE_BENCH_REPEAT  runs per measurement; the best is kept (default 3)
  HOLDNOTE_BENCH_DIR     where the temporary files go (default: the system temp dir)

Both sides read and write real files and fsync their output, since Holdnote's
writer always fsyncs on close. Figures are MiB of plaintext per second of wall
time; the ratio ours/age is the number to watch (target: at least 0.5).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not

from appliance import age  # noqa: E402

MIB = 1024 * 1024
READ_BLOCK = MIB
RECORDER_FRAME = 4096  # what a PyAudio callback hands the recorder


def fsync_path(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def make_plaintext(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size_mib):
            block = os.urandom(MIB)
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def ours_encrypt(src: Path, dst: Path, recipient: age.X25519Recipient, block: int) -> None:
    dst.unlink(missing_ok=True)
    buf = bytearray(block)
    view = memoryview(buf)
    with open(src, "rb") as f, age.StreamWriter(dst, [recipient]) as writer:
        while n := f.readinto(buf):
            writer.write(view[:n])


def ours_decrypt(src: Path, dst: Path, identity: age.X25519Identity) -> None:
    with age.StreamReader(src, [identity]) as reader, open(dst, "wb") as out:
        for chunk in reader:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def age_cli(flags: list[str], src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    # age stops reading flags at the first file name, so the input goes last.
    subprocess.run(["age", *flags, "-o", str(dst), str(src)], check=True, capture_output=True)
    fsync_path(dst)


def best_time(action: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(work: Path, size_mib: int, repeat: int) -> dict[str, tuple[float, float | None]]:
    """MiB/s per operation: (ours, age CLI or None when age is missing)."""
    plain = work / "plain.bin"
    digest = make_plaintext(plain, size_mib)
    identity = age.X25519Identity.generate()
    recipient = identity.to_recipient()
    keyfile = work / "key.txt"
    keyfile.write_text(f"{identity}\n")
    have_age = shutil.which("age") is not None

    def rate(action: Callable[[], None]) -> float:
        return size_mib / best_time(action, repeat)

    def cli_rate(flags: list[str], src: Path, dst: Path) -> float | None:
        return rate(lambda: age_cli(flags, src, dst)) if have_age else None

    results = {
        "encrypt": (
            rate(lambda: ours_encrypt(plain, work / "ours.age", recipient, READ_BLOCK)),
            cli_rate(["-r", str(recipient)], plain, work / "cli.age"),
        ),
        "decrypt": (
            rate(lambda: ours_decrypt(work / "ours.age", work / "ours.out", identity)),
            cli_rate(["-d", "-i", str(keyfile)], work / "ours.age", work / "cli.out"),
        ),
    }
    check_outputs(work, digest, have_age)
    frames = rate(lambda: ours_encrypt(plain, work / "ours.age", recipient, RECORDER_FRAME))
    results[f"encrypt, {RECORDER_FRAME // 1024} KiB writes"] = (frames, None)
    return results


def check_outputs(work: Path, digest: str, have_age: bool) -> None:
    """Fail loudly rather than report speed for wrong output."""
    outputs = [work / "ours.out"] + ([work / "cli.out"] if have_age else [])
    for path in outputs:
        if sha256_file(path) != digest:
            raise SystemExit(f"benchmark output {path.name} does not match the plaintext")
    if have_age:  # and our decryption of age's own file
        identity = age.parse_identities((work / "key.txt").read_text())[0]
        ours_decrypt(work / "cli.age", work / "ours.out", identity)
        if sha256_file(work / "ours.out") != digest:
            raise SystemExit("we could not decrypt the file age wrote")


def print_table(results: dict[str, tuple[float, float | None]], size_mib: int, repeat: int) -> None:
    print(f"age streaming, {size_mib} MiB, best of {repeat}, MiB/s of plaintext (output fsynced)")
    print(f"{'operation':<24}{'ours':>10}{'age CLI':>10}{'ours/age':>10}")
    for name, (ours, cli) in results.items():
        cli_text = f"{cli:10.1f}" if cli else f"{'-':>10}"
        ratio = f"{ours / cli:9.2f}x" if cli else f"{'-':>10}"
        print(f"{name:<24}{ours:10.1f}{cli_text}{ratio}")
    if shutil.which("age") is None:
        print("age CLI not found: install the Debian package 'age' for the comparison")


def main() -> None:
    size_mib = int(os.environ.get("HOLDNOTE_BENCH_MB", "256"))
    repeat = int(os.environ.get("HOLDNOTE_BENCH_REPEAT", "3"))
    work_dir = os.environ.get("HOLDNOTE_BENCH_DIR")
    with tempfile.TemporaryDirectory(prefix="holdnote-bench-", dir=work_dir) as tmp:
        results = measure(Path(tmp), size_mib, repeat)
    print_table(results, size_mib, repeat)


if __name__ == "__main__":
    main()
