"""Unit tests for appliance.age: round trips, streaming, salvage, tampering, keys."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from appliance import age
from appliance.age import CHUNK_SIZE
from appliance.age.header import parse_header
from appliance.age.source import Source
from appliance.errors import (
    ArmorError,
    CryptoError,
    HeaderError,
    HeaderMacError,
    KeyFormatError,
    NoIdentityMatchError,
    PayloadError,
    TruncatedStreamError,
)

ENC_CHUNK = CHUNK_SIZE + 16
FAST_SCRYPT = 4  # work factor for tests: 16 KiB of memory, well under a millisecond


@pytest.fixture(scope="module")
def identity() -> age.X25519Identity:
    return age.X25519Identity.generate()


@pytest.fixture(scope="module")
def recipient(identity) -> age.X25519Recipient:
    return identity.to_recipient()


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def header_length(ciphertext: bytes) -> int:
    """Bytes up to and including the MAC line (the payload nonce follows)."""
    return ciphertext.index(b"\n---") + len("\n--- ") + 43 + 1


def chunk_offset(ciphertext: bytes, index: int) -> int:
    return header_length(ciphertext) + 16 + index * ENC_CHUNK


def write_stream(path: Path, recipient, data: bytes) -> None:
    with age.StreamWriter(path, [recipient]) as writer:
        writer.write(data)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE],
    ids=["empty", "one", "chunk-1", "chunk", "chunk+1", "three-chunks"],
)
def test_round_trip_sizes(identity, recipient, size):
    plaintext = payload(size, seed=size)
    ciphertext = age.encrypt(plaintext, [recipient])
    chunks = max(1, -(-size // CHUNK_SIZE))  # a full last chunk stays the last one
    assert len(ciphertext) == header_length(ciphertext) + 16 + size + 16 * chunks
    assert age.decrypt(ciphertext, [identity]) == plaintext


def test_writer_accepts_random_piece_sizes(identity, recipient):
    rng = random.Random(7)
    plaintext = payload(5 * CHUNK_SIZE + 12345, seed=1)
    out = io.BytesIO()
    with age.StreamWriter(out, [recipient]) as writer:
        pos = 0
        while pos < len(plaintext):
            size = rng.choice([0, 1, 7, 4096, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE])
            assert writer.write(plaintext[pos : pos + size]) == len(plaintext[pos : pos + size])
            pos += size
        assert writer.bytes_written == len(plaintext)
    assert age.decrypt(out.getvalue(), [identity]) == plaintext
    assert not out.closed  # a file object belongs to the caller


def test_writer_takes_any_bytes_like(identity, recipient):
    out = io.BytesIO()
    with age.StreamWriter(out, [recipient]) as writer:
        writer.write(bytearray(b"ab"))
        writer.write(memoryview(b"cdef")[1:3])
    assert age.decrypt(out.getvalue(), [identity]) == b"abde"


def test_reader_reads_in_any_sizes(identity, recipient):
    plaintext = payload(2 * CHUNK_SIZE + 99, seed=2)
    ciphertext = age.encrypt(plaintext, [recipient])
    rng = random.Random(3)
    with age.StreamReader(io.BytesIO(ciphertext), [identity]) as reader:
        parts = []
        while part := reader.read(rng.choice([1, 100, CHUNK_SIZE + 1])):
            parts.append(part)
        assert reader.read() == b""
    assert b"".join(parts) == plaintext


def test_reader_readinto_and_chunk_iteration(identity, recipient):
    plaintext = payload(2 * CHUNK_SIZE + 5, seed=4)
    ciphertext = age.encrypt(plaintext, [recipient])
    with age.StreamReader(io.BytesIO(ciphertext), [identity]) as reader:
        buf = bytearray(10)
        assert reader.readinto(buf) == 10
        rest = list(reader)
    assert bytes(buf) + b"".join(rest) == plaintext
    assert [len(c) for c in rest] == [CHUNK_SIZE - 10, CHUNK_SIZE, 5]


def test_reader_opens_and_closes_a_path(tmp_path, identity, recipient):
    path = tmp_path / "note.age"
    write_stream(path, recipient, b"session note")
    reader = age.StreamReader(path, [identity])
    assert reader.read() == b"session note"
    reader.close()
    assert reader.closed
    with pytest.raises(ValueError):
        reader.read(1)


def test_armored_input_is_accepted(identity, recipient):
    plaintext = payload(1000, seed=5)
    armored = age.armor(age.encrypt(plaintext, [recipient]))
    assert armored.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert age.decrypt(armored, [identity]) == plaintext
    with age.StreamReader(io.BytesIO(b"\n \t\r\n" + armored + b"\n "), [identity]) as reader:
        assert reader.read() == plaintext


def test_dearmor_is_strict():
    armored = age.armor(b"x" * 100)
    assert age.dearmor(armored) == b"x" * 100
    with pytest.raises(ArmorError):
        age.dearmor(armored.replace(b"\n", b" \n", 1))
    with pytest.raises(ArmorError):
        age.dearmor(armored + b"trailing")


def test_passphrase_round_trip():
    recipient = age.ScryptRecipient("correct horse", work_factor=FAST_SCRYPT)
    ciphertext = age.encrypt(b"identity file", [recipient])
    assert b"-> scrypt " in ciphertext
    assert age.decrypt(ciphertext, [age.ScryptIdentity("correct horse")]) == b"identity file"


@pytest.mark.skipif(not age.HYBRID_SUPPORTED, reason="cryptography has no ML-KEM-768 here")
def test_hybrid_round_trip():
    identity = age.HybridIdentity.generate()
    recipient = age.HybridRecipient.from_str(str(identity.to_recipient()))
    ciphertext = age.encrypt(b"post-quantum", [recipient])
    assert age.decrypt(ciphertext, [identity]) == b"post-quantum"
    assert age.HybridIdentity.from_str(str(identity)).to_recipient() == recipient
    with pytest.raises(ValueError, match="post-quantum"):
        age.encrypt(b"x", [recipient, age.X25519Identity.generate().to_recipient()])


# --- flush, durability and salvage ------------------------------------------------------------


def salvage_bytes(path: Path, identity) -> tuple[age.SalvageResult, bytes]:
    out = io.BytesIO()
    with open(path, "rb") as src:
        result = age.salvage(src, out, [identity])
    return result, out.getvalue()


def test_flush_fsync_makes_completed_chunks_readable(tmp_path, identity, recipient):
    path = tmp_path / "rec.wav.age"
    plaintext = payload(4 * CHUNK_SIZE, seed=6)
    writer = age.StreamWriter(path, [recipient])
    writer.write(plaintext[: 2 * CHUNK_SIZE + 100])
    writer.flush(fsync=True)
    result, recovered = salvage_bytes(path, identity)
    assert (result.bytes_recovered, result.chunks, result.truncated) == (2 * CHUNK_SIZE, 2, True)
    assert recovered == plaintext[: 2 * CHUNK_SIZE]
    # A just-filled chunk may still become the final one, so it waits for a byte beyond it.
    writer.write(plaintext[2 * CHUNK_SIZE + 100 : 3 * CHUNK_SIZE])
    writer.flush(fsync=True)
    assert salvage_bytes(path, identity)[0].chunks == 2
    writer.write(plaintext[3 * CHUNK_SIZE :])
    writer.flush(fsync=True)
    assert salvage_bytes(path, identity)[0].chunks == 3
    writer.close()
    result, recovered = salvage_bytes(path, identity)
    assert (result.bytes_recovered, result.truncated) == (len(plaintext), False)
    assert recovered == plaintext


def test_fsync_each_chunk_writes_chunks_without_flush(tmp_path, identity, recipient):
    path = tmp_path / "rec.wav.age"
    writer = age.StreamWriter(path, [recipient], fsync_each_chunk=True)
    writer.write(payload(CHUNK_SIZE + 1))
    assert salvage_bytes(path, identity)[0].bytes_recovered == CHUNK_SIZE
    writer.close()


def test_exception_in_with_block_leaves_stream_unfinished(tmp_path, identity, recipient):
    path = tmp_path / "rec.wav.age"
    with pytest.raises(RuntimeError):
        with age.StreamWriter(path, [recipient]) as writer:
            writer.write(payload(CHUNK_SIZE + 10))
            raise RuntimeError("microphone lost")
    assert writer.closed
    with pytest.raises(TruncatedStreamError):
        age.decrypt(path.read_bytes(), [identity])
    assert salvage_bytes(path, identity)[0].bytes_recovered == CHUNK_SIZE


class FullDisk(io.BytesIO):
    """A file that runs out of space after ``room`` bytes, like a full SD card."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_failed_write_leaves_a_salvageable_unfinished_stream(identity, recipient):
    disk = FullDisk(room=2 * ENC_CHUNK + 500)
    writer = age.StreamWriter(disk, [recipient])
    with pytest.raises(OSError):
        writer.write(payload(4 * CHUNK_SIZE))
    with pytest.raises(ValueError, match="broken"):
        writer.write(b"more")
    writer.close()  # must not write a final chunk after lost data
    out = io.BytesIO()
    result = age.salvage(io.BytesIO(disk.getvalue()), out, [identity])
    assert (result.truncated, result.chunks) == (True, 2)  # header + 2 chunks fit
    assert out.getvalue() == payload(4 * CHUNK_SIZE)[: 2 * CHUNK_SIZE]


def test_writer_refuses_use_after_close_and_existing_paths(tmp_path, recipient):
    path = tmp_path / "rec.age"
    write_stream(path, recipient, b"first")
    with pytest.raises(FileExistsError):
        age.StreamWriter(path, [recipient])
    writer = age.StreamWriter(io.BytesIO(), [recipient])
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError):
        writer.write(b"late")


CUTS = {
    "after-nonce": lambda ct: chunk_offset(ct, 0),
    "inside-chunk-0": lambda ct: chunk_offset(ct, 0) + 1000,
    "after-chunk-0": lambda ct: chunk_offset(ct, 1),
    "inside-chunk-1": lambda ct: chunk_offset(ct, 1) + ENC_CHUNK - 1,
    "after-chunk-1": lambda ct: chunk_offset(ct, 2),
    "inside-final-chunk": lambda ct: len(ct) - 1,
}


@pytest.mark.parametrize("cut", CUTS, ids=list(CUTS))
def test_salvage_of_a_cut_file(tmp_path, identity, recipient, cut):
    plaintext = payload(2 * CHUNK_SIZE + 500, seed=8)
    ciphertext = age.encrypt(plaintext, [recipient])
    cut_at = CUTS[cut](ciphertext)
    complete = (cut_at - chunk_offset(ciphertext, 0)) // ENC_CHUNK
    path = tmp_path / "cut.age"
    path.write_bytes(ciphertext[:cut_at])

    result, recovered = salvage_bytes(path, identity)
    assert result == age.SalvageResult(complete * CHUNK_SIZE, truncated=True, chunks=complete)
    assert recovered == plaintext[: complete * CHUNK_SIZE]

    released = bytearray()
    with pytest.raises(TruncatedStreamError, match="cut short") as caught:
        with age.StreamReader(path, [identity]) as reader:
            for chunk in reader:
                released += chunk
    assert released == recovered
    assert f"{len(recovered)} bytes" in str(caught.value)
    assert ("use salvage" in str(caught.value)) == bool(recovered)
    with pytest.raises(TruncatedStreamError):
        age.decrypt(ciphertext[:cut_at], [identity])


def test_salvage_stops_at_a_corrupted_chunk(tmp_path, identity, recipient):
    plaintext = payload(3 * CHUNK_SIZE + 1, seed=9)
    ciphertext = bytearray(age.encrypt(plaintext, [recipient]))
    ciphertext[chunk_offset(ciphertext, 1) + 5] ^= 0x40
    path = tmp_path / "bad.age"
    path.write_bytes(ciphertext)
    result, recovered = salvage_bytes(path, identity)
    assert result == age.SalvageResult(CHUNK_SIZE, truncated=True, chunks=1, corrupted=True)
    assert recovered == plaintext[:CHUNK_SIZE]
    with pytest.raises(PayloadError) as caught:
        age.decrypt(bytes(ciphertext), [identity])
    assert not isinstance(caught.value, TruncatedStreamError)


def test_salvage_of_a_complete_file(tmp_path, identity, recipient):
    path = tmp_path / "ok.age"
    write_stream(path, recipient, b"complete")
    result, recovered = salvage_bytes(path, identity)
    assert (result, recovered) == (age.SalvageResult(8, truncated=False, chunks=1), b"complete")


# --- tampering and wrong keys ------------------------------------------------------------------


def test_altered_header_fails_the_mac(identity, recipient):
    ciphertext = age.encrypt(b"secret", [recipient])
    with_extra_stanza = ciphertext.replace(b"v1\n", b"v1\n-> grease\n\n", 1)
    with pytest.raises(HeaderMacError):
        age.decrypt(with_extra_stanza, [identity])
    mac_at = ciphertext.index(b"\n--- ") + 5
    flipped = bytearray(ciphertext)
    flipped[mac_at] = ord("B") if flipped[mac_at] != ord("B") else ord("C")
    with pytest.raises(HeaderMacError, match="altered"):
        age.decrypt(bytes(flipped), [identity])


@pytest.mark.parametrize("where", ["nonce", "first-chunk", "tag"])
def test_altered_payload_fails(identity, recipient, where):
    ciphertext = bytearray(age.encrypt(payload(100), [recipient]))
    offset = {
        "nonce": header_length(ciphertext),
        "first-chunk": chunk_offset(ciphertext, 0),
        "tag": len(ciphertext) - 1,
    }
    ciphertext[offset[where]] ^= 1
    with pytest.raises(PayloadError):
        age.decrypt(bytes(ciphertext), [identity])


def test_trailing_data_is_rejected(identity, recipient):
    ciphertext = age.encrypt(payload(CHUNK_SIZE), [recipient])
    with pytest.raises(PayloadError, match="after the final chunk"):
        age.decrypt(ciphertext + b"\0", [identity])


def test_wrong_identity_and_passphrase(recipient):
    ciphertext = age.encrypt(b"secret", [recipient])
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(ciphertext, [age.X25519Identity.generate()])
    sealed = age.encrypt(b"secret", [age.ScryptRecipient("right", work_factor=FAST_SCRYPT)])
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(sealed, [age.ScryptIdentity("wrong")])


def test_scrypt_work_factor_limit_and_exclusivity(recipient):
    sealed = age.encrypt(b"x", [age.ScryptRecipient("pw", work_factor=FAST_SCRYPT + 1)])
    with pytest.raises(HeaderError, match="above the limit"):
        age.decrypt(sealed, [age.ScryptIdentity("pw", max_work_factor=FAST_SCRYPT)])
    with pytest.raises(ValueError, match="only recipient"):
        age.encrypt(b"x", [age.ScryptRecipient("pw", work_factor=FAST_SCRYPT), recipient])


def test_any_matching_identity_opens(identity, recipient):
    other = age.X25519Identity.generate()
    ciphertext = age.encrypt(b"two readers", [other.to_recipient(), recipient])
    assert age.decrypt(ciphertext, [age.X25519Identity.generate(), identity]) == b"two readers"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(300), "not an age file"),
        (b"age-encryption.org/v2\n", "unsupported age format version"),
        (b"age-encryption.org/v1\n-> X25519 " + b"A" * 20000 + b"\n", "longer than"),
        (b"age-encryption.org/v1\n-> X25519 abc\n", "cut short inside its header"),
    ],
    ids=["empty", "wav", "version-2", "long-line", "cut-header"],
)
def test_header_errors_are_actionable(identity, data, message):
    with pytest.raises(HeaderError, match=message):
        age.decrypt(data, [identity])


def test_every_failure_is_a_crypto_error(identity):
    errors = (HeaderError, ArmorError, NoIdentityMatchError, HeaderMacError, PayloadError)
    assert all(issubclass(error, CryptoError) for error in errors + (TruncatedStreamError,))
    with pytest.raises(CryptoError):
        age.decrypt(b"junk", [identity])


# --- nonces and file keys are never reused --------------------------------------------


def test_each_file_gets_a_fresh_file_key_and_nonce(identity, recipient):
    files = [age.encrypt(b"same plaintext", [recipient]) for _ in range(3)]
    file_keys, nonces = set(), set()
    for ciphertext in files:
        header = parse_header(Source(io.BytesIO(ciphertext)))
        file_keys.add(identity.unwrap(header.stanzas))
        start = header_length(ciphertext)
        nonces.add(ciphertext[start : start + 16])
    assert len(file_keys) == len(nonces) == len(set(files)) == 3


# --- keys -----------------------------------------------------------------------------------------


def test_key_strings_round_trip(identity, recipient):
    text = str(identity)
    assert text.startswith("AGE-SECRET-KEY-1") and text.isupper()
    assert str(age.X25519Identity.from_str(text)) == text
    assert age.X25519Identity.from_str(text).to_recipient() == recipient
    assert str(recipient).startswith("age1")
    assert age.X25519Recipient.from_str(str(recipient)) == recipient
    assert text not in repr(identity) and str(recipient) in repr(identity)


def _break_checksum(text: str) -> str:
    last = "q" if text[-1] != "q" else "p"
    return text[:-1] + (last.upper() if text.isupper() else last)


MALFORMED_IDENTITIES = {
    "empty": "",
    "no-separator": "AGESECRETKEY",
    "bad-checksum": "checksum",
    "lower-case": "lower",
    "mixed-case": "mixed",
    "recipient-instead": "recipient",
    "short-key": age.bech32_encode("AGE-SECRET-KEY-", bytes(31)),
    "non-ascii": "AGE-SECRET-KEY-1É",
    "invalid-character": "AGE-SECRET-KEY-1BIO",
}


@pytest.mark.parametrize("case", MALFORMED_IDENTITIES, ids=list(MALFORMED_IDENTITIES))
def test_malformed_identity_strings(identity, recipient, case):
    text = {
        "checksum": _break_checksum(str(identity)),
        "lower": str(identity).lower(),
        "mixed": str(identity)[:20] + str(identity)[20:].lower(),
        "recipient": str(recipient),
    }.get(MALFORMED_IDENTITIES[case], MALFORMED_IDENTITIES[case])
    with pytest.raises(KeyFormatError) as caught:
        age.X25519Identity.from_str(text)
    assert str(identity)[16:] not in str(caught.value)  # never echo a secret


@pytest.mark.parametrize(
    "text",
    ["", "age1", "age1qqqq", "bob1" + "q" * 58, "upper", "short"],
)
def test_malformed_recipient_strings(recipient, text):
    text = {
        "upper": str(recipient).upper(),  # age only writes (and reads) lower-case recipients
        "short": age.bech32_encode("age", bytes(31)),
    }.get(text, text)
    with pytest.raises(KeyFormatError, match="not an age"):
        age.X25519Recipient.from_str(text)


def test_recipient_with_bad_checksum(recipient):
    with pytest.raises(KeyFormatError, match="checksum"):
        age.X25519Recipient.from_str(_break_checksum(str(recipient)))


def test_secret_key_given_as_recipient_is_not_echoed(identity):
    with pytest.raises(KeyFormatError, match="secret key") as caught:
        age.X25519Recipient.from_str(str(identity))
    assert str(identity)[16:] not in str(caught.value)


def test_parse_identities_skips_comments_and_names_bad_lines(identity):
    other = age.X25519Identity.generate()
    text = f"# created: today\n# public key: {identity.to_recipient()}\n"
    text += f"{identity}\n\n  {other}  \r\n"
    parsed = age.parse_identities(text)
    assert [str(i) for i in parsed] == [str(identity), str(other)]
    with pytest.raises(KeyFormatError, match="line 2"):
        age.parse_identities(f"{identity}\nAGE-SECRET-KEY-1NOPE\n")
    with pytest.raises(KeyFormatError, match="no keys"):
        age.parse_identities("# nothing here\n")


def test_strings_are_not_accepted_as_keys(identity, recipient):
    with pytest.raises(TypeError, match="from_str"):
        age.encrypt(b"x", [str(recipient)])
    with pytest.raises(TypeError):
        age.decrypt(age.encrypt(b"x", [recipient]), str(identity))


# --- Bech32 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 20, 32, 100, 1216])
def test_bech32_round_trip(size):
    data = payload(size, seed=size)
    for hrp in ("age", "AGE-SECRET-KEY-"):
        text = age.bech32_encode(hrp, data)
        assert age.bech32_decode(text) == (hrp, data)


# Valid and invalid strings published in BIP 173.
@pytest.mark.parametrize(
    "text",
    [
        "A12UEL5L",
        "a12uel5l",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    ],
)
def test_bech32_accepts_bip173_valid_strings(text):
    hrp, _ = age.bech32_decode(text)
    assert hrp == text[: text.rfind("1")]


@pytest.mark.parametrize(
    "text",
    ["pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "A1G7SGD8", "de1lg7wt\xff"]
    + ["a12UEL5L"],  # mixed case
)
def test_bech32_rejects_bip173_invalid_strings(text):
    with pytest.raises(KeyFormatError):
        age.bech32_decode(text)


# --- atomic file helpers ---------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_encrypt_file_and_decrypt_file(tmp_path, identity, recipient):
    plaintext = payload(CHUNK_SIZE * 3 + 17, seed=10)
    (tmp_path / "a.wav").write_bytes(plaintext)
    age.encrypt_file(tmp_path / "a.wav", tmp_path / "a.wav.age", [recipient])
    age.decrypt_file(tmp_path / "a.wav.age", tmp_path / "b.wav", [identity])
    assert (tmp_path / "b.wav").read_bytes() == plaintext
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["wrong-key", "cut-short", "bad-chunk"])
def test_decrypt_file_failure_leaves_nothing(tmp_path, identity, recipient, damage):
    ciphertext = bytearray(age.encrypt(payload(3 * CHUNK_SIZE, seed=11), [recipient]))
    if damage == "cut-short":
        del ciphertext[chunk_offset(ciphertext, 2) :]
    if damage == "bad-chunk":
        ciphertext[chunk_offset(ciphertext, 2) + 1] ^= 1
    key = age.X25519Identity.generate() if damage == "wrong-key" else identity
    src = tmp_path / "in.age"
    src.write_bytes(ciphertext)
    with pytest.raises(CryptoError, match=str(src)):
        age.decrypt_file(src, tmp_path / "out.wav", [key])
    assert not (tmp_path / "out.wav").exists()
    assert src.read_bytes() == ciphertext
    assert leftovers(tmp_path) == []
    (tmp_path / "out.wav").write_bytes(b"previous")
    with pytest.raises(CryptoError):
        age.decrypt_file(src, tmp_path / "out.wav", [key])
    assert (tmp_path / "out.wav").read_bytes() == b"previous"


def test_encrypt_file_failure_leaves_nothing(tmp_path, recipient):
    with pytest.raises(FileNotFoundError):
        age.encrypt_file(tmp_path / "missing.wav", tmp_path / "out.age", [recipient])
    assert os.listdir(tmp_path) == []
