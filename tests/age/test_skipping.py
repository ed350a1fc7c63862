"""The explicit salvage mode (appliance/age/skipping.py): damaged chunks are skipped
and reported as gaps, while normal reading, ours and the stock ``age``, still fails."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from appliance import age
from appliance.age import CHUNK_SIZE
from appliance.errors import CryptoError, PayloadError
from tests.age.test_age import chunk_offset, payload

AGE = shutil.which("age")


@pytest.fixture(scope="module")
def identity() -> age.X25519Identity:
    return age.X25519Identity.generate()


def flip(ciphertext: bytearray, chunk: int, at: int = 1000) -> None:
    """XOR one byte inside chunk ``chunk``, as a bad SD card sector might."""
    ciphertext[chunk_offset(ciphertext, chunk) + at] ^= 0x01


def skim(ciphertext: bytes, identity, finished: bool = True) -> tuple[bytes, age.SkippingReader]:
    with age.SkippingReader(io.BytesIO(ciphertext), [identity], finished=finished) as reader:
        return reader.read(), reader


def zeroed(plaintext: bytes, *gaps: age.Gap) -> bytes:
    out = bytearray(plaintext)
    for gap in gaps:
        out[gap.offset:gap.end] = bytes(gap.length)
    return bytes(out)


def test_two_bad_chunks_and_a_bad_final_chunk_become_three_gaps(identity):
    plaintext = payload(5 * CHUNK_SIZE + 777, seed=11)  # chunks 0-4 full, chunk 5 final
    sealed = bytearray(age.encrypt(plaintext, [identity.to_recipient()]))
    for chunk in (1, 3, 5):
        flip(sealed, chunk, at=100)

    recovered, reader = skim(bytes(sealed), identity)

    gaps = [age.Gap(CHUNK_SIZE, CHUNK_SIZE), age.Gap(3 * CHUNK_SIZE, CHUNK_SIZE),
            age.Gap(5 * CHUNK_SIZE, 777)]
    assert reader.gaps == gaps
    assert recovered == zeroed(plaintext, *gaps)  # everything else, each byte where it was
    assert (reader.truncated, reader.trailing_data, reader.chunks) == (False, False, 6)
    with pytest.raises(PayloadError):  # normal reading still refuses the file
        age.decrypt(bytes(sealed), [identity])


def test_adjacent_bad_chunks_merge_and_an_intact_file_has_no_gaps(identity):
    plaintext = payload(4 * CHUNK_SIZE, seed=12)  # the final chunk is a full one
    intact = age.encrypt(plaintext, [identity.to_recipient()])
    assert skim(intact, identity)[0] == plaintext and skim(intact, identity)[1].gaps == []
    sealed = bytearray(intact)
    flip(sealed, 1)
    flip(sealed, 2)
    flip(sealed, 3)  # the full-size final chunk
    recovered, reader = skim(bytes(sealed), identity)
    assert reader.gaps == [age.Gap(CHUNK_SIZE, 3 * CHUNK_SIZE)]
    assert recovered == plaintext[:CHUNK_SIZE] + bytes(3 * CHUNK_SIZE)
    assert reader.truncated is False  # the damaged last chunk may have been the final one


def test_a_cut_file_with_a_bad_chunk_is_both_gapped_and_truncated(identity):
    plaintext = payload(4 * CHUNK_SIZE + 5, seed=13)
    sealed = bytearray(age.encrypt(plaintext, [identity.to_recipient()]))
    flip(sealed, 1)
    cut = bytes(sealed[:chunk_offset(sealed, 3)])  # chunks 3 and 4 never reached the disk
    recovered, reader = skim(cut, identity)
    assert reader.gaps == [age.Gap(CHUNK_SIZE, CHUNK_SIZE)]
    assert recovered == zeroed(plaintext[:3 * CHUNK_SIZE], *reader.gaps)
    assert reader.truncated is True
    with pytest.raises(PayloadError):
        age.decrypt(cut, [identity])


def test_a_short_bad_last_chunk_of_a_stream_not_known_finished_is_its_torn_end(identity):
    plaintext = payload(3 * CHUNK_SIZE, seed=17)
    sealed = age.encrypt(plaintext, [identity.to_recipient()])
    torn = sealed[:chunk_offset(sealed, 2) + 5000]  # power cut while chunk 2 was written
    recovered, reader = skim(torn, identity, finished=False)
    assert recovered == plaintext[:2 * CHUNK_SIZE]
    assert reader.truncated and reader.gaps == []
    # Had the writer closed the stream, those bytes would be a damaged final chunk.
    recovered, reader = skim(torn, identity, finished=True)
    assert reader.gaps == [age.Gap(2 * CHUNK_SIZE, 5000 - 16)] and not reader.truncated


def test_data_after_the_final_chunk_is_ignored_and_reported(identity):
    sealed = age.encrypt(payload(CHUNK_SIZE, seed=14), [identity.to_recipient()])
    recovered, reader = skim(sealed + b"appended", identity)
    assert recovered == payload(CHUNK_SIZE, seed=14)
    assert reader.trailing_data and not reader.gaps


def test_a_damaged_header_still_raises(identity):
    sealed = bytearray(age.encrypt(b"x" * 100, [identity.to_recipient()]))
    sealed[sealed.index(b"\n---") + 10] ^= 0x01  # inside the header MAC
    with pytest.raises(CryptoError):
        skim(bytes(sealed), identity)


def test_crash_recovery_salvage_still_stops_at_the_first_bad_chunk(tmp_path, identity):
    """``age.salvage`` (the recorder's crash recovery) still stops at the first bad chunk:
    re-sealing a stream with a chunk left out would shift everything after it."""
    plaintext = payload(3 * CHUNK_SIZE, seed=15)
    sealed = bytearray(age.encrypt(plaintext, [identity.to_recipient()]))
    flip(sealed, 1)
    path = tmp_path / "bad.age"
    path.write_bytes(sealed)
    out = io.BytesIO()
    result = age.salvage(path, out, [identity])
    assert result.corrupted and out.getvalue() == plaintext[:CHUNK_SIZE]


@pytest.mark.skipif(AGE is None, reason="the age CLI (Debian package 'age') is not installed")
def test_stock_age_refuses_the_file_the_skipping_reader_salvages(tmp_path, identity):
    plaintext = payload(3 * CHUNK_SIZE, seed=16)
    sealed = bytearray(age.encrypt(plaintext, [identity.to_recipient()]))
    flip(sealed, 1)
    (tmp_path / "key.txt").write_text(str(identity) + "\n")
    (tmp_path / "bad.age").write_bytes(sealed)
    done = subprocess.run([AGE, "-d", "-i", str(tmp_path / "key.txt"), str(tmp_path / "bad.age")],
                          capture_output=True, check=False)
    assert done.returncode != 0
    assert skim(bytes(sealed), identity)[1].gaps == [age.Gap(CHUNK_SIZE, CHUNK_SIZE)]
