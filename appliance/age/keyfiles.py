"""Identity and recipient files, and the checks on lists of keys:
:func:`parse_identities` and :func:`parse_recipients` read ``age-keygen``-style
text, and :func:`check_recipients` / :func:`check_identities` validate what a
caller hands to encryption or decryption (types, a passphrase only on its own,
no mixing of post-quantum and classic recipients) before any work is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from appliance.age.hybrid import HybridIdentity, HybridRecipient
from appliance.age.scrypt import ScryptRecipient
from appliance.age.stanza import Identity, Recipient
from appliance.age.x25519 import X25519Identity, X25519Recipient
from appliance.errors import KeyFormatError


def _key_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


_Key_co = TypeVar("_Key_co", covariant=True)


class _KeyClass(Protocol[_Key_co]):
    """A key class, which parses one line of a key file."""

    def from_str(self, text: str, /) -> _Key_co: ...


def _parse_keys(text: str, what: str, pick: Callable[[str], _KeyClass[_Key_co]]) -> list[_Key_co]:
    """Each key line parsed by the class ``pick`` chooses for it; errors name the line."""
    keys = []
    for number, line in _key_lines(text):
        try:
            keys.append(pick(line).from_str(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"{what} file line {number}: {exc}") from None
    if not keys:
        raise KeyFormatError(f"{what} file contains no keys (only comments or blank lines)")
    return keys


def parse_identities(text: str) -> list[X25519Identity | HybridIdentity]:
    """Parse identity-file text (``age-keygen`` output): keys, ``#`` comments, blank lines.

    Raises :class:`KeyFormatError` naming the line number (never the key itself).
    """
    return _parse_keys(text, "identity", lambda line: HybridIdentity
                       if line.startswith("AGE-SECRET-KEY-PQ-") else X25519Identity)


def parse_recipients(text: str) -> list[X25519Recipient | HybridRecipient]:
    """Parse recipients-file text: one ``age1…`` per line, ``#`` comments, blank lines."""
    return _parse_keys(text, "recipients", lambda line: HybridRecipient
                       if line.startswith("age1pq1") else X25519Recipient)


def check_recipients(recipients: Sequence[Recipient]) -> list[Recipient]:
    """``recipients`` as a non-empty list of recipient objects, or TypeError/ValueError."""
    if isinstance(recipients, (str, bytes)):
        raise TypeError("recipients must be a list of recipient objects, not a string")
    items = list(recipients)
    if not items:
        raise ValueError("at least one recipient is required")
    for item in items:
        if not isinstance(item, Recipient):
            raise TypeError(
                f"{type(item).__name__} is not an age recipient; parse strings with "
                "X25519Recipient.from_str"
            )
    if len(items) > 1 and any(isinstance(r, ScryptRecipient) for r in items):
        raise ValueError("a passphrase (ScryptRecipient) must be the only recipient of a file")
    hybrid = [isinstance(r, HybridRecipient) for r in items]
    if any(hybrid) and not all(hybrid):
        raise ValueError(
            "mixing post-quantum (age1pq) and classic recipients would undo the "
            "post-quantum protection; use only age1pq recipients"
        )
    return items


def check_identities(identities: Sequence[Identity]) -> list[Identity]:
    """``identities`` as a list of identity objects, or TypeError."""
    if isinstance(identities, (str, bytes)):
        raise TypeError("identities must be a list of identity objects, not a string")
    items = list(identities)
    for item in items:
        if not isinstance(item, Identity):
            raise TypeError(
                f"{type(item).__name__} is not an age identity; parse strings with "
                "parse_identities or X25519Identity.from_str"
            )
    return items
