"""Tests of :mod:`appliance.transcription`."""
