"""Serving the web UI: gunicorn and its configuration, the TLS certificate, the session
secret.
"""
