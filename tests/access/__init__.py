"""Tests of :mod:`appliance.access`."""
