"""Tests of :mod:`appliance.app`."""
