"""Tests of :mod:`appliance.notes`."""
