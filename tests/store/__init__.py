"""Tests of :mod:`appliance.store`."""
