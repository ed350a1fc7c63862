"""Replay the C2SP/CCTV age test vectors against appliance.age.

Every file in ``../shared/testdata/age`` is one vector: a small text header
(``expect``, ``payload`` hash, ``identity`` / ``passphrase`` lines, ``armored``,
``compressed``), an empty line, then an age file. Results are reported per test
function so they can be counted:

- ``test_success_vector``: decrypted, payload hash matches;
- ``test_rejected_vector``: rejected with the exception class its ``expect`` names;
- skipped (with the reason): not applicable to this installation.

``test_header_round_trip`` and ``test_armor_round_trip`` additionally check that
every parsable header and armor re-encodes to the same bytes, as the upstream
README suggests.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance import age
from appliance.age.header import parse_header
from appliance.age.primitives import VERSION_LINE, b64_encode
from appliance.age.source import Source
from appliance.errors import (
    ArmorError,
    HeaderError,
    HeaderMacError,
    NoIdentityMatchError,
    PayloadError,
)

VECTOR_DIR = Path(__file__).resolve().parents[2].parent / "shared/testdata/age"

if not VECTOR_DIR.is_dir():
    pytest.skip(f"age test vectors not found at {VECTOR_DIR}", allow_module_level=True)

EXPECTED_ERROR = {
    "header failure": HeaderError,
    "armor failure": ArmorError,
    "no match": NoIdentityMatchError,
    "HMAC failure": HeaderMacError,
    "payload failure": PayloadError,
}
KNOWN_KEYS = {
    "expect", "payload", "identity", "passphrase", "armored", "compressed", "file key", "comment"
}


@dataclass
class Vector:
    name: str
    expect: str
    payload_hash: str | None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    armored: bool = False
    data: bytes = b""
    unknown_keys: list[str] = field(default_factory=list)


def load_vector(path: Path) -> Vector:
    """Parse one vector file (format in README.upstream.md)."""
    head, sep, body = path.read_bytes().partition(b"\n\n")
    assert sep, f"{path.name}: no empty line between header and age file"
    vector = Vector(path.name, expect="", payload_hash=None)
    compressed = False
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        if key == "expect":
            vector.expect = value
        elif key == "payload":
            vector.payload_hash = value
        elif key == "identity":
            vector.identities.append(value)
        elif key == "passphrase":
            vector.passphrases.append(value)
        elif key == "armored":
            vector.armored = value == "yes"
        elif key == "compressed":
            assert value == "zlib", f"{path.name}: unknown compression {value!r}"
            compressed = True
        elif key not in KNOWN_KEYS:
            vector.unknown_keys.append(key)
    vector.data = zlib.decompress(body) if compressed else body
    return vector


def not_applicable_reason(vector: Vector) -> str | None:
    """Why a vector cannot be run here, or None when it can."""
    if vector.unknown_keys:
        return f"unknown header keys {vector.unknown_keys} (the README says to ignore such files)"
    hybrid = any(i.startswith("AGE-SECRET-KEY-PQ-") for i in vector.identities)
    if hybrid and not age.HYBRID_SUPPORTED:
        return "ML-KEM-768 hybrid keys need a cryptography release with ML-KEM support"
    return None


VECTORS = [
    load_vector(p)
    for p in sorted(VECTOR_DIR.iterdir())
    if p.is_file() and not p.name.startswith("README")
]
NOT_SUPPORTED = {v.name: reason for v in VECTORS if (reason := not_applicable_reason(v))}


def params(selected: list[Vector]) -> list:
    def marks(vector: Vector) -> list:
        reason = NOT_SUPPORTED.get(vector.name)
        return [pytest.mark.skip(reason=reason)] if reason else []

    return [pytest.param(v, id=v.name, marks=marks(v)) for v in selected]


def identities_for(vector: Vector) -> list:
    identities: list = [
        age.HybridIdentity.from_str(s)
        if s.startswith("AGE-SECRET-KEY-PQ-")
        else age.X25519Identity.from_str(s)
        for s in vector.identities
    ]
    identities += [age.ScryptIdentity(p) for p in vector.passphrases]
    return identities


def stream_released(vector: Vector) -> tuple[bytes, Exception | None]:
    """Plaintext a streaming reader hands out before it stops, and why it stopped."""
    released = bytearray()
    try:
        with age.StreamReader(io.BytesIO(vector.data), identities_for(vector)) as reader:
            for chunk in reader:
                released += chunk
    except Exception as exc:  # the caller checks the class
        return bytes(released), exc
    return bytes(released), None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_vector_is_classified():
    assert len(VECTORS) >= 140, f"only {len(VECTORS)} vectors in {VECTOR_DIR}"
    unknown = {v.name: v.expect for v in VECTORS if v.expect not in {"success", *EXPECTED_ERROR}}
    assert not unknown, f"vectors with an unknown expect value: {unknown}"


@pytest.mark.parametrize("vector", params([v for v in VECTORS if v.expect == "success"]))
def test_success_vector(vector: Vector):
    plaintext = age.decrypt(vector.data, identities_for(vector))
    assert sha256(plaintext) == vector.payload_hash
    released, error = stream_released(vector)
    assert error is None
    assert sha256(released) == vector.payload_hash


@pytest.mark.parametrize("vector", params([v for v in VECTORS if v.expect != "success"]))
def test_rejected_vector(vector: Vector):
    expected = EXPECTED_ERROR[vector.expect]
    with pytest.raises(expected) as caught:
        age.decrypt(vector.data, identities_for(vector))
    if vector.expect == "header failure":  # ArmorError is a HeaderError: be exact
        assert not isinstance(caught.value, ArmorError), caught.value
    released, error = stream_released(vector)
    assert type(error) is type(caught.value), (error, caught.value)
    if vector.expect == "payload failure":
        # Whatever the stream released before failing must be the authentic prefix.
        assert sha256(released) == vector.payload_hash
    else:
        assert released == b""


@pytest.mark.parametrize("vector", params([v for v in VECTORS if v.armored]))
def test_armor_round_trip(vector: Vector):
    if vector.expect == "armor failure":
        with pytest.raises(ArmorError):
            age.dearmor(vector.data)
        return
    inner = age.dearmor(vector.data)
    # Line ends and surrounding whitespace are the armor's only tolerated freedoms.
    canonical = vector.data.replace(b"\r\n", b"\n").strip() + b"\n"
    assert age.armor(inner) == canonical


@pytest.mark.parametrize(
    "vector", params([v for v in VECTORS if not v.armored and v.expect != "header failure"])
)
def test_header_round_trip(vector: Vector):
    source = Source(io.BytesIO(vector.data))
    header = parse_header(source)
    encoded = header.mac_input + b" " + b64_encode(header.mac) + b"\n"
    assert vector.data.startswith(encoded)
    stanzas = b"".join(s.encode() for s in header.stanzas)
    assert header.mac_input == VERSION_LINE + stanzas + b"---"
