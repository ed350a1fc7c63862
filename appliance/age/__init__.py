"""The age v1 file format (https://age-encryption.org/v1), built on ``cryptography``.

Every recording, transcript and note Holdnote stores is an age file, so the stock
tool opens it: ``age -d -i key.txt rec.wav.age > rec.wav``.

What this module gives:

- keys: :class:`X25519Identity` / :class:`X25519Recipient` (``AGE-SECRET-KEY-1…`` /
  ``age1…``), passphrases (:class:`ScryptRecipient` / :class:`ScryptIdentity`) and,
  when the installed ``cryptography`` has ML-KEM, the post-quantum hybrid
  (:class:`HybridIdentity` / :class:`HybridRecipient`, ``AGE-SECRET-KEY-PQ-1…``);
- one-shot :func:`encrypt` / :func:`decrypt`, which never return partial plaintext;
- streaming :class:`StreamWriter` / :class:`StreamReader` in 64 KiB chunks with
  bounded memory, plus :func:`salvage` for a stream that lost its final chunk
  (for example after a power cut while recording);
- the explicit salvage mode :class:`SkippingReader`, which reads past chunks that
  fail to authenticate and reports each as a :class:`Gap` (normal reading fails);
- random access, :class:`SeekableReader`: any byte range, decrypting only the
  chunks it needs (damaged ones read as zeros and are reported as gaps);
- atomic :func:`encrypt_file` / :func:`decrypt_file` (temporary name, fsync, rename);
- strict ASCII armor: :func:`dearmor`, :func:`read_armored`, :func:`armor`.

Parsing is as strict as the reference implementation: anything the spec calls
non-canonical is rejected, and every C2SP/CCTV test vector is classified the same
way. Failures are :class:`~appliance.errors.CryptoError` subclasses; an
authentication failure is one opaque error per kind and says nothing about why.

This package is the public face; other code imports from here.

The implementation lives beside this file, one module per part of the format.
Imports flow one way, from the bottom up: ``bech32`` and ``primitives``; ``stanza``;
the key types ``x25519``, ``scrypt`` and ``hybrid``; ``keyfiles``; ``source``;
``armor`` and ``header``; ``stream``; ``skipping`` and ``files``; ``seekable``.

Names without a leading underscore are shared between these modules; a leading
underscore means the name is used only in the module that defines it.
"""

from __future__ import annotations

from appliance.age.armor import ArmorReader as ArmorReader
from appliance.age.armor import armor, dearmor, read_armored
from appliance.age.bech32 import bech32_decode, bech32_encode
from appliance.age.files import (
    SalvageResult,
    decrypt,
    decrypt_file,
    encrypt,
    encrypt_file,
    salvage,
)
from appliance.age.hybrid import HYBRID_SUPPORTED, HybridIdentity, HybridRecipient
from appliance.age.keyfiles import parse_identities, parse_recipients
from appliance.age.primitives import CHUNK_SIZE
from appliance.age.scrypt import DEFAULT_SCRYPT_WORK_FACTOR as DEFAULT_SCRYPT_WORK_FACTOR
from appliance.age.scrypt import MAX_SCRYPT_WORK_FACTOR as MAX_SCRYPT_WORK_FACTOR
from appliance.age.scrypt import ScryptIdentity, ScryptRecipient
from appliance.age.seekable import SeekableReader
from appliance.age.skipping import Gap, SkippingReader
from appliance.age.stanza import Identity, Recipient, Stanza
from appliance.age.stream import PathOrFile as PathOrFile
from appliance.age.stream import StreamReader, StreamWriter
from appliance.age.x25519 import X25519Identity, X25519Recipient

# ArmorReader, the scrypt work-factor defaults and PathOrFile (re-exported with
# "as" above) stay importable from here but, as before, outside __all__.
__all__ = [
    "CHUNK_SIZE",
    "HYBRID_SUPPORTED",
    "Gap",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "Recipient",
    "SalvageResult",
    "ScryptIdentity",
    "ScryptRecipient",
    "SeekableReader",
    "SkippingReader",
    "Stanza",
    "StreamReader",
    "StreamWriter",
    "X25519Identity",
    "X25519Recipient",
    "armor",
    "bech32_decode",
    "bech32_encode",
    "dearmor",
    "decrypt",
    "decrypt_file",
    "encrypt",
    "encrypt_file",
    "parse_identities",
    "parse_recipients",
    "read_armored",
    "salvage",
]
