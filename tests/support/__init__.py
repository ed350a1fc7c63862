"""Code the tests and benches share: the ALSA test device, seeded data directories, the
web fixtures, the DER scorer.
"""
