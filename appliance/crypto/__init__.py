"""The age v1 implementation behind :mod:`appliance.age`, one module per part of
the format. Imports flow one way, from the bottom up: ``bech32`` and
``primitives``; ``stanza``; the key types ``x25519``, ``scrypt`` and ``hybrid``;
``keyfiles``; ``source``; ``armor`` and ``header``; ``stream``; ``files``. Other
code imports the public API from :mod:`appliance.age`, not from here.

Names without a leading underscore are shared between these modules; a leading
underscore means the name is used only in the module that defines it.
"""
