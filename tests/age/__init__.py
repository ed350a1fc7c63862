"""Tests of :mod:`appliance.age`."""
