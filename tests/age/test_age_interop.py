"""Interoperability of appliance.age with the stock age CLI and with pyrage (rage).

The promise to clinicians is that ``age -d -i key.txt rec.wav.age`` opens any file
Holdnote writes, and that key slots (identities encrypted under a passphrase) work
with the stock tool too. ``age`` reads passphrases only from a terminal, so those
tests drive it through a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from appliance import age
from appliance.age import CHUNK_SIZE

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
try:
    import pyrage
except ImportError:
    pyrage = None

needs_age = pytest.mark.skipif(
    AGE is None or AGE_KEYGEN is None, reason="the age CLI (Debian package 'age') is not installed"
)
needs_pyrage = pytest.mark.skipif(
    pyrage is None, reason="pyrage is not installed (pip install -e '.[test]')"
)
FAST_SCRYPT = 10  # our own passphrase files: fast, yet accepted by age's limits
PASSPHRASE = "staple battery 42"


@pytest.fixture
def keyfile(tmp_path) -> Path:
    """An identity file written by age-keygen."""
    path = tmp_path / "key.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(path)], check=True, capture_output=True)
    return path


def public_key(keyfile: Path) -> str:
    """The recipient of an identity file, as age-keygen -y prints it."""
    result = subprocess.run(
        [AGE_KEYGEN, "-y", str(keyfile)], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def plaintext(size: int) -> bytes:
    return os.urandom(size)


def run_age(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run([AGE, *args], input=stdin, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def run_age_on_tty(args: list[str], passphrase: str, timeout: float = 60) -> tuple[int, str]:
    """Run age with a pseudo-terminal as its controlling tty, answering passphrase prompts.

    pty.fork makes the child a session leader with the pty as controlling terminal,
    which age needs because it opens /dev/tty. Returns (exit code, transcript).
    """
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execv(AGE, [AGE, *args])
        finally:
            os._exit(127)
    transcript = _answer_prompts(fd, pid, passphrase, time.monotonic() + timeout)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")


def _answer_prompts(fd: int, pid: int, passphrase: str, deadline: float) -> bytes:
    transcript, answered = bytearray(), 0
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, 9)
            return bytes(transcript + b"\n[timed out]")
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return bytes(transcript)
        if not data:
            return bytes(transcript)
        transcript += data
        # One "passphrase" per prompt: "Enter passphrase…", "Confirm passphrase:".
        if transcript.lower().count(b"passphrase") > answered:
            os.write(fd, passphrase.encode() + b"\n")
            answered += 1


# --- X25519 --------------------------------------------------------------------------


@needs_age
@pytest.mark.parametrize(
    "size", [0, CHUNK_SIZE, 2 * CHUNK_SIZE + 7], ids=["empty", "one-full-chunk", "three-chunks"]
)
def test_age_cli_decrypts_our_files(tmp_path, keyfile, size):
    identity = age.parse_identities(keyfile.read_text())[0]
    data = plaintext(size)
    (tmp_path / "rec.age").write_bytes(age.encrypt(data, [identity.to_recipient()]))
    assert run_age("-d", "-i", str(keyfile), str(tmp_path / "rec.age")) == data


@needs_age
def test_age_cli_decrypts_our_stream_writer_file(tmp_path, keyfile):
    recipient = age.parse_identities(keyfile.read_text())[0].to_recipient()
    data = plaintext(3 * CHUNK_SIZE + 1)
    with age.StreamWriter(tmp_path / "rec.wav.age", [recipient]) as writer:
        for i in range(0, len(data), 4096):  # like audio frames from the recorder
            writer.write(data[i : i + 4096])
    assert run_age("-d", "-i", str(keyfile), "-o", "-", str(tmp_path / "rec.wav.age")) == data


@needs_age
def test_we_decrypt_age_cli_files(tmp_path, keyfile):
    identities = age.parse_identities(keyfile.read_text())
    recipient = public_key(keyfile)
    data = plaintext(CHUNK_SIZE + 100)
    by_recipient = run_age("-r", recipient, stdin=data)
    by_identity = run_age("-e", "-i", str(keyfile), stdin=data)
    armored = run_age("-a", "-r", recipient, stdin=data)
    assert armored.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    for ciphertext in (by_recipient, by_identity, armored):
        assert age.decrypt(ciphertext, identities) == data


@needs_age
def test_age_cli_reads_our_armor(tmp_path, keyfile):
    identity = age.parse_identities(keyfile.read_text())[0]
    armored = age.armor(age.encrypt(b"signed note", [identity.to_recipient()]))
    (tmp_path / "note.age").write_bytes(armored)
    assert run_age("-d", "-i", str(keyfile), str(tmp_path / "note.age")) == b"signed note"


@needs_age
def test_we_parse_age_keygen_identities(keyfile):
    public = public_key(keyfile)
    identities = age.parse_identities(keyfile.read_text())
    assert len(identities) == 1
    assert str(identities[0].to_recipient()) == public
    assert str(identities[0]) in keyfile.read_text()


@needs_age
def test_age_cli_also_rejects_a_truncated_file(tmp_path, keyfile):
    recipient = age.parse_identities(keyfile.read_text())[0].to_recipient()
    ciphertext = age.encrypt(plaintext(2 * CHUNK_SIZE), [recipient])
    (tmp_path / "cut.age").write_bytes(ciphertext[: len(ciphertext) - 100])
    result = subprocess.run(
        [AGE, "-d", "-i", str(keyfile), str(tmp_path / "cut.age")], capture_output=True, timeout=60
    )
    assert result.returncode != 0


# --- passphrases through a terminal -----------------------------------------------------------


@needs_age
def test_age_cli_opens_our_passphrase_file(tmp_path):
    sealed = age.encrypt(b"passphrase data", [age.ScryptRecipient(PASSPHRASE, FAST_SCRYPT)])
    (tmp_path / "secret.age").write_bytes(sealed)
    args = ["-d", "-o", str(tmp_path / "out"), str(tmp_path / "secret.age")]
    code, transcript = run_age_on_tty(args, PASSPHRASE)
    assert code == 0, transcript
    assert (tmp_path / "out").read_bytes() == b"passphrase data"


@needs_age
def test_age_cli_uses_our_key_slot(tmp_path):
    """A key slot is the identity file encrypted under a passphrase; age -i opens it."""
    identity = age.X25519Identity.generate()
    slot_text = f"# key slot\n{identity}\n".encode()
    slot = age.encrypt(slot_text, [age.ScryptRecipient(PASSPHRASE, FAST_SCRYPT)])
    (tmp_path / "slot.age").write_bytes(slot)
    (tmp_path / "rec.age").write_bytes(age.encrypt(b"session audio", [identity.to_recipient()]))
    args = ["-d", "-i", str(tmp_path / "slot.age"), "-o", str(tmp_path / "rec")]
    args.append(str(tmp_path / "rec.age"))
    code, transcript = run_age_on_tty(args, PASSPHRASE)
    assert code == 0, transcript
    assert (tmp_path / "rec").read_bytes() == b"session audio"


@needs_age
def test_we_open_age_cli_passphrase_file(tmp_path):
    (tmp_path / "plain").write_bytes(b"from age -p")
    args = ["-p", "-o", str(tmp_path / "p.age"), str(tmp_path / "plain")]
    code, transcript = run_age_on_tty(args, PASSPHRASE)
    assert code == 0, transcript
    ciphertext = (tmp_path / "p.age").read_bytes()
    assert b"\n-> scrypt " in ciphertext
    assert age.decrypt(ciphertext, [age.ScryptIdentity(PASSPHRASE)]) == b"from age -p"


# --- pyrage (rage, the Rust implementation) ------------------------------------------------------


@needs_pyrage
def test_pyrage_and_we_agree_on_x25519():
    theirs = pyrage.x25519.Identity.generate()
    ours = age.X25519Identity.from_str(str(theirs))
    assert str(ours.to_recipient()) == str(theirs.to_public())
    data = plaintext(2 * CHUNK_SIZE + 3)
    assert age.decrypt(pyrage.encrypt(data, [theirs.to_public()]), [ours]) == data
    assert pyrage.decrypt(age.encrypt(data, [ours.to_recipient()]), [theirs]) == data


@needs_pyrage
def test_pyrage_and_we_agree_on_passphrases():
    data = plaintext(1000)
    ours = age.encrypt(data, [age.ScryptRecipient(PASSPHRASE, work_factor=FAST_SCRYPT)])
    assert pyrage.passphrase.decrypt(ours, PASSPHRASE) == data
    theirs = pyrage.passphrase.encrypt(data, PASSPHRASE)  # rage calibrates to about 1 s
    assert age.decrypt(theirs, [age.ScryptIdentity(PASSPHRASE)]) == data
