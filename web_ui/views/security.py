"""The network boundary and the security headers of every response.

The page must be reachable only from the office network: a client address
outside loopback, private and link-local ranges (and the configured extra
networks) gets 403 and an audit entry. The address is the TCP peer as
gunicorn saw it; ``X-Forwarded-For`` is never consulted, because any client
can write it. A Host header that is not one of the device's names is refused,
which defeats DNS-rebinding pages on the clinician's own browser.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import Flask, abort, request

from web_ui.views.context import services

log = logging.getLogger(__name__)

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

# One audit entry per refused address per this interval: a scanner on the
# internet must not be able to fill the audit log.
DENIAL_AUDIT_INTERVAL = timedelta(minutes=5)


def _parse(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_allowed(address: str | None, extra_networks: Iterable[str] = ()) -> bool:
    """True for loopback, private (RFC 1918, fc00::/7), link-local or configured addresses."""
    ip = _parse(address)
    if ip is None:
        return False
    if ip.is_loopback or ip.is_link_local:
        return True
    if ip.version == 4 and any(ip in net for net in _PRIVATE_V4):
        return True
    if ip.version == 6 and ip in _ULA:
        return True
    return any(ip in ipaddress.ip_network(net, strict=False) for net in extra_networks)


# Python's is_private also counts documentation and benchmark ranges; the
# boundary is meant to be exactly the ranges an office network uses.
_PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in
                    ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ULA = ipaddress.ip_network("fc00::/7")


def device_names() -> set[str]:
    """The names this device answers to: its host name, that name under .local, localhost."""
    host = socket.gethostname().strip().rstrip(".").lower()
    short = host.split(".", 1)[0]
    return {"localhost", host, short, f"{short}.local"}


def host_allowed(host_header: str | None, names: set[str], extra: Iterable[str] = ()) -> bool:
    """True if the Host header names this device (any IP literal is accepted)."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [IPv6]:port
        literal = host[1:].split("]", 1)[0]
        return _parse(literal) is not None
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if _parse(name) is not None:
        return True
    name = name.rstrip(".")
    return name in names or name in {e.strip().lower().rstrip(".") for e in extra}


class _DenialAudit:
    """Remembers when each refused address was last audited (per worker)."""

    def __init__(self):
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def due(self, address: str, now: datetime) -> bool:
        with self._lock:
            last = self._last.get(address)
            if last is not None and now - last < DENIAL_AUDIT_INTERVAL:
                return False
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[address] = now
            return True


def install(app: Flask) -> None:
    """Refuse outside clients and foreign Host headers; add headers to every response."""
    names = device_names()
    denials = _DenialAudit()

    @app.before_request
    def network_boundary():
        svc = services()
        address = request.remote_addr
        if not client_allowed(address, svc.cfg.web.allowed_networks):
            if denials.due(address or "?", svc.now()):
                log.warning("refused a request from %s (outside the office network)", address)
                svc.audit.append("anonymous", "network.denied", source=address,
                                 detail=request.path[:200])
            abort(403, "This page is only available on the office network.")
        if not host_allowed(request.host, names, svc.cfg.web.allowed_hosts):
            log.warning("refused Host header %r from %s", request.host, address)
            abort(400, "Unknown host name. Use the device's name or address.")

    @app.after_request
    def security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # Any page may show clinical text: never keep it in a browser cache.
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        return response
