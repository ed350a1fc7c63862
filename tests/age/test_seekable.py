"""Random access (appliance/age/seekable.py): any byte range of an age file, decrypting
only the chunks it needs; damaged chunks read as zeros, a cut-off file up to its last
whole chunk, a wrong key fails clearly."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance import age
from appliance.age import CHUNK_SIZE
from appliance.errors import HeaderError, NoIdentityMatchError
from tests.age.test_age import ENC_CHUNK, chunk_offset, payload

AGE = shutil.which("age")
# Three whole chunks and a short final one: ranges cross every kind of boundary.
PLAIN = payload(3 * CHUNK_SIZE + 1234, seed=7)


@pytest.fixture(scope="module")
def identity() -> age.X25519Identity:
    return age.X25519Identity.generate()


@pytest.fixture(scope="module")
def ours(tmp_path_factory, identity) -> Path:
    """PLAIN as our StreamWriter writes it."""
    path = tmp_path_factory.mktemp("seek") / "ours.age"
    with age.StreamWriter(path, [identity.to_recipient()]) as writer:
        writer.write(PLAIN)
    return path


def _copy(source: Path, tmp_path: Path, edit=None) -> Path:
    data = bytearray(source.read_bytes())
    if edit is not None:
        edit(data)
    path = tmp_path / "copy.age"
    path.write_bytes(bytes(data))
    return path


def _ranges(size: int, count: int = 60) -> list[tuple[int, int]]:
    rng = random.Random(3)
    edges = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, size - 1, size]
    picks = [(a, b) for a in edges for b in edges if a <= b]
    for _ in range(count):
        a = rng.randrange(size + 1)
        picks.append((a, rng.randrange(a, size + 1)))
    return picks


def _check_ranges(path: Path, identity, plain: bytes) -> None:
    with age.SeekableReader(path, [identity]) as reader:
        assert reader.size == len(plain) and not reader.truncated
        for start, stop in _ranges(len(plain)):
            assert reader.read_at(start, stop - start) == plain[start:stop], (start, stop)
        assert reader.gaps == []


def test_random_ranges_of_our_file_equal_the_plaintext_slices(ours, identity):
    _check_ranges(ours, identity, PLAIN)


@pytest.mark.skipif(AGE is None, reason="the age CLI (Debian package 'age') is not installed")
def test_random_ranges_of_a_file_the_stock_age_wrote(tmp_path, identity):
    source = tmp_path / "plain.bin"
    source.write_bytes(PLAIN)
    path = tmp_path / "stock.age"
    subprocess.run([AGE, "-r", str(identity.to_recipient()), "-o", str(path), str(source)],
                   check=True, capture_output=True)
    _check_ranges(path, identity, PLAIN)


@pytest.mark.parametrize("size", [0, 10, CHUNK_SIZE, 2 * CHUNK_SIZE])
def test_sizes_at_chunk_boundaries_and_empty(tmp_path, identity, size):
    plain = payload(size, seed=size)
    path = tmp_path / "edge.age"
    with age.StreamWriter(path, [identity.to_recipient()]) as writer:
        writer.write(plain)
    with age.SeekableReader(path, [identity]) as reader:
        assert (reader.size, reader.truncated) == (size, False)
        assert reader.read_at(0, size + 5) == plain


def test_a_flipped_bit_zeroes_that_chunk_only_and_reports_it(ours, tmp_path, identity):
    def flip(data: bytearray) -> None:
        data[chunk_offset(data, 1) + 500] ^= 0x01

    path = _copy(ours, tmp_path, flip)
    with age.SeekableReader(path, [identity]) as reader:
        whole = reader.read_at(0, reader.size)
        # Reading the same chunk twice reports it once.
        assert reader.read_at(CHUNK_SIZE + 10, 10) == bytes(10)
        gaps = reader.gaps
    expected = PLAIN[:CHUNK_SIZE] + bytes(CHUNK_SIZE) + PLAIN[2 * CHUNK_SIZE:]
    assert whole == expected
    assert gaps == [age.Gap(CHUNK_SIZE, CHUNK_SIZE)]


def test_a_range_away_from_the_damage_reads_clean_and_reports_nothing(ours, tmp_path, identity):
    def flip(data: bytearray) -> None:
        data[chunk_offset(data, 0) + 5] ^= 0x80

    with age.SeekableReader(_copy(ours, tmp_path, flip), [identity]) as reader:
        assert reader.read_at(2 * CHUNK_SIZE, 5000) == PLAIN[2 * CHUNK_SIZE:2 * CHUNK_SIZE + 5000]
        assert reader.gaps == []


@pytest.mark.parametrize("cut", [0, 7, ENC_CHUNK + 3])
def test_a_file_cut_short_plays_up_to_its_last_whole_chunk(ours, tmp_path, identity, cut):
    """A recorder crash: the final chunk is missing, torn inside a chunk or a tag."""
    def truncate(data: bytearray) -> None:
        end = chunk_offset(data, 2) + cut
        del data[end:]

    with age.SeekableReader(_copy(ours, tmp_path, truncate), [identity]) as reader:
        whole = 2 * CHUNK_SIZE + (CHUNK_SIZE if cut == ENC_CHUNK + 3 else 0)
        assert reader.truncated and reader.size == whole
        assert reader.read_at(0, reader.size + 100) == PLAIN[:whole]
        assert reader.gaps == []


def test_a_damaged_short_final_chunk_of_a_finished_file_is_a_gap(ours, tmp_path, identity):
    def flip(data: bytearray) -> None:
        data[-20] ^= 0x01

    path = _copy(ours, tmp_path, flip)
    with age.SeekableReader(path, [identity], finished=True) as reader:
        assert reader.size == len(PLAIN) and not reader.truncated
        assert reader.read_at(3 * CHUNK_SIZE, 2000) == bytes(1234)
        assert reader.gaps == [age.Gap(3 * CHUNK_SIZE, 1234)]
    with age.SeekableReader(path, [identity]) as reader:  # not known finished: a torn end
        assert reader.size == 3 * CHUNK_SIZE and reader.truncated


def test_a_wrong_key_fails_clearly(ours):
    with pytest.raises(NoIdentityMatchError, match="different key"):
        age.SeekableReader(ours, [age.X25519Identity.generate()])


def test_an_armored_file_is_refused_with_advice(tmp_path, identity):
    path = tmp_path / "armored.age"
    path.write_bytes(age.armor(age.encrypt(b"hello", [identity.to_recipient()])))
    with pytest.raises(HeaderError, match="armored"):
        age.SeekableReader(path, [identity])


def test_bad_ranges_are_refused(ours, identity):
    with age.SeekableReader(ours, [identity]) as reader, pytest.raises(ValueError, match="range"):
        list(reader.iter_range(10, 5))
