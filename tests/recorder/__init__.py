"""Tests of :mod:`appliance.recorder`."""
