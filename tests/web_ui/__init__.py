"""Tests of :mod:`web_ui`, through Flask's test client."""
