"""Bech32 (BIP 173, without its 90-character limit, as age specifies): the text
encoding of every age key, ``age1…`` recipients and ``AGE-SECRET-KEY-1…``
identities alike. This module owns only the codec, not what the bytes mean; a
malformed string raises :class:`~appliance.errors.KeyFormatError` without
echoing the text, which may be a secret key.
"""

from __future__ import annotations

from collections.abc import Iterable

from appliance.errors import KeyFormatError

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_VALUES = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values: Iterable[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i, generator in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                chk ^= generator
    return chk


def _bech32_hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    max_value = (1 << to_bits) - 1
    max_acc = (1 << (from_bits + to_bits - 1)) - 1
    for value in data:
        acc = ((acc << from_bits) | value) & max_acc
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_value:
        raise KeyFormatError("malformed key: invalid Bech32 padding")
    return out


def _check_hrp(hrp: str) -> None:
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise KeyFormatError("malformed key: invalid Bech32 prefix")


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` as Bech32 with prefix ``hrp``; an uppercase ``hrp`` gives uppercase."""
    _check_hrp(hrp)
    if hrp.lower() != hrp and hrp.upper() != hrp:
        raise KeyFormatError(f"Bech32 prefix {hrp!r} mixes upper and lower case")
    lower = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _bech32_polymod(_bech32_hrp_expand(lower) + values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = lower + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)
    return text if hrp == lower else text.upper()


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string into ``(prefix, data)``; the prefix keeps its case.

    Raises :class:`KeyFormatError` without echoing ``text``, which may be a secret key.
    """
    if not isinstance(text, str) or not text.isascii():
        raise KeyFormatError("malformed key: not an ASCII string")
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("malformed key: mixes upper and lower case")
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise KeyFormatError("malformed key: no Bech32 separator or too short")
    hrp = text[:pos]
    _check_hrp(hrp)
    try:
        values = [_BECH32_VALUES[c] for c in text[pos + 1 :].lower()]
    except KeyError:
        raise KeyFormatError("malformed key: invalid Bech32 character") from None
    if _bech32_polymod(_bech32_hrp_expand(hrp.lower()) + values) != 1:
        raise KeyFormatError("malformed key: Bech32 checksum does not match (typo?)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))
