"""The age header: strict parsing (version line, recipient stanzas, MAC line,
with bounds on what a hostile header can make us buffer), encoding it for a set
of recipients, finding the file key with the caller's identities and verifying
the header MAC. :func:`open_payload` ties these together and hands the stream
reader its payload cipher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from appliance.age.keyfiles import check_identities
from appliance.age.primitives import (
    COLUMNS,
    FILE_KEY_SIZE,
    NONCE_SIZE,
    VERSION_LINE,
    VERSION_PREFIX,
    b64_decode,
    b64_encode,
    hkdf,
)
from appliance.age.source import Source
from appliance.age.stanza import ARG, Identity, Recipient, Stanza
from appliance.errors import HeaderError, HeaderMacError, NoIdentityMatchError

# Bounds on what a hostile header can make us buffer and try. The largest native
# stanza line (mlkem768p256tag) is about 1.6 KB.
_MAX_LINE = 16 * 1024
_MAX_HEADER = 1024 * 1024


@dataclass(frozen=True)
class _Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes  # the header up to and including "---"


def _header_line(src: Source, raw: bytearray, limit: int = _MAX_LINE) -> bytes:
    line = src.readline(limit)
    if not line.endswith(b"\n"):
        if len(line) >= limit:
            raise HeaderError(f"malformed age header: a header line is longer than {limit} bytes")
        raise HeaderError("age header is incomplete: the file was cut short inside its header")
    raw += line
    if len(raw) > _MAX_HEADER:
        raise HeaderError(f"malformed age header: header is larger than {_MAX_HEADER} bytes")
    return line


def _check_version(src: Source, raw: bytearray) -> None:
    line = src.readline(len(VERSION_LINE) + 64)
    if not line:
        raise HeaderError("input is empty: it is not an age file")
    if not line.startswith(VERSION_PREFIX):
        raise HeaderError(
            "input is not an age file: it does not begin with 'age-encryption.org/v1'"
        )
    if line == VERSION_LINE[:-1]:
        raise HeaderError("age header is incomplete: the file was cut short inside its header")
    if line == VERSION_LINE[:-1] + b"\r\n":
        raise HeaderError(
            "age header has CRLF line ends: the file was altered in transfer (copied as "
            "text?); age files are binary"
        )
    if line != VERSION_LINE:
        version = line[len(VERSION_PREFIX) :].rstrip(b"\n")[:32]
        raise HeaderError(f"unsupported age format version {version!r}: only v1 can be read")
    raw += line


def _parse_stanza(first: bytes, src: Source, raw: bytearray) -> Stanza:
    parts = first[:-1].split(b" ")
    if parts[0] != b"->" or len(parts) < 2 or not all(ARG.fullmatch(p) for p in parts[1:]):
        raise HeaderError(f"malformed age header: bad stanza line {first[:40]!r}")
    body = bytearray()
    while True:
        line = _header_line(src, raw)[:-1]
        if len(line) > COLUMNS:
            raise HeaderError(
                f"malformed age header: stanza body line longer than {COLUMNS} columns"
            )
        if line.startswith((b"->", b"---")):
            raise HeaderError("malformed age header: stanza ended without its short final line")
        body += b64_decode(line, "stanza body")
        if len(line) < COLUMNS:
            args = tuple(p.decode("ascii") for p in parts[2:])
            return Stanza(parts[1].decode("ascii"), args, bytes(body))


def _parse_mac_line(line: bytes) -> bytes:
    parts = line[:-1].split(b" ")
    if parts[0] != b"---" or len(parts) != 2:
        raise HeaderError("malformed age header: bad MAC line")
    mac = b64_decode(parts[1], "header MAC")
    if len(mac) != 32:
        raise HeaderError("malformed age header: header MAC is not 32 bytes")
    return mac


def parse_header(src: Source) -> _Header:
    """Read and check the header's syntax up to its MAC line (the MAC is checked later)."""
    raw = bytearray()
    _check_version(src, raw)
    stanzas = []
    while True:
        line = _header_line(src, raw)
        if line.startswith(b"---"):
            mac = _parse_mac_line(line)
            mac_input = bytes(raw[: len(raw) - len(line) + 3])
            break
        if not line.startswith(b"->"):
            raise HeaderError(f"malformed age header: unexpected line {line[:40]!r}")
        stanzas.append(_parse_stanza(line, src, raw))
    if not stanzas:
        raise HeaderError("malformed age header: no recipient stanzas")
    return _Header(tuple(stanzas), mac, mac_input)


def _header_mac(file_key: bytes, mac_input: bytes) -> _hmac.HMAC:
    mac = _hmac.HMAC(hkdf(file_key, b"", b"header"), hashes.SHA256())
    mac.update(mac_input)
    return mac


def encode_header(recipients: Sequence[Recipient], file_key: bytes) -> bytes:
    """The header for ``recipients``: their stanzas and the MAC under ``file_key``."""
    stanzas = [stanza for r in recipients for stanza in r.wrap(file_key)]
    mac_input = VERSION_LINE + b"".join(s.encode() for s in stanzas) + b"---"
    mac = _header_mac(file_key, mac_input).finalize()
    return mac_input + b" " + b64_encode(mac) + b"\n"


def _unwrap_file_key(header: _Header, identities: Sequence[Identity]) -> bytes:
    if len(header.stanzas) > 1 and any(s.type == "scrypt" for s in header.stanzas):
        raise HeaderError(
            "malformed age header: a passphrase (scrypt) stanza must be the only stanza"
        )
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            if len(file_key) != FILE_KEY_SIZE:
                raise HeaderError("malformed age header: wrapped file key is not 16 bytes")
            return file_key
    raise NoIdentityMatchError(
        "no identity matched: this file was encrypted to a different key or passphrase"
    )


def _verify_mac(header: _Header, file_key: bytes) -> None:
    try:
        _header_mac(file_key, header.mac_input).verify(header.mac)
    except InvalidSignature:
        raise HeaderMacError(
            "header MAC does not match: the file header was altered or damaged"
        ) from None


def open_payload(src: Source, identities: Sequence[Identity]) -> ChaCha20Poly1305:
    """Parse and authenticate the header; return the payload cipher."""
    identities = check_identities(identities)
    header = parse_header(src)
    file_key = _unwrap_file_key(header, identities)
    _verify_mac(header, file_key)
    nonce = src.read(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise HeaderError("age file is incomplete: the payload nonce is missing (file cut short)")
    return ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
