"""A small HTTPS client for driving the real web page as a browser would.

Standard library only: a cookie jar, CSRF tokens taken from the forms, redirects
followed, and the server's certificate pinned to the SHA-256 fingerprint the
installer (or the demo) printed, which is what a clinician is told to check.
"""

from __future__ import annotations

import hashlib
import html
import http.cookiejar
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

_CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')
_RECOVERY_KEY = re.compile(r'data-testid="recovery-key"[^>]*>([^<]+)<')


@dataclass(frozen=True)
class Page:
    """One response, after redirects."""

    status: int
    url: str
    text: str

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    def csrf(self) -> str:
        """The CSRF token of the first form on the page."""
        match = _CSRF.search(self.text)
        assert match, f"no CSRF token on {self.url}"
        return html.unescape(match.group(1))

    def visible_text(self) -> str:
        """The page's text with tags removed and entities decoded (for searching)."""
        return html.unescape(re.sub(r"<[^>]+>", " ", self.text))


def fingerprint_of(host: str, port: int) -> str:
    """The SHA-256 fingerprint of the certificate the server presents, as AB:CD:…"""
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((host, port), timeout=10))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


GENERIC_400 = "That request could not be understood"
EXPIRED_FORM = "This form has expired"


class WebClient:
    """A browser-like session against ``https://host:port``, pinned to ``fingerprint``."""

    def __init__(self, host: str, port: int, fingerprint: str):
        actual = fingerprint_of(host, port)
        if actual != fingerprint.upper():
            raise AssertionError(f"certificate fingerprint {actual} is not the printed "
                                 f"{fingerprint}")
        self.base = f"https://{host}:{port}"
        context = ssl.create_default_context()
        # Self-signed: trust comes from the fingerprint check above, as for a person.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.cookies = http.cookiejar.CookieJar()
        self.recovery_key = ""  # set by setup()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(self.cookies),
        )

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self.opener.open(request, timeout=60) as reply:
                return Page(reply.status, reply.url, reply.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            return Page(error.code, error.url, error.read().decode("utf-8", "replace"))

    def get(self, path: str) -> Page:
        """GET a page (following redirects)."""
        return self._open(urllib.request.Request(self.base + path))

    def fetch(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """GET raw bytes (a recording) with extra headers: status, headers, body."""
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post(self, path: str, fields: dict[str, str], csrf: str) -> Page:
        """POST a form with the CSRF token the page carried."""
        body = urllib.parse.urlencode({**fields, "csrf_token": csrf}).encode()
        request = urllib.request.Request(self.base + path, data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        return self._open(request)

    def submit(self, path: str, fields: dict[str, str]) -> Page:
        """GET the form page, then POST it with its own CSRF token."""
        return self.post(path, fields, self.get(path).csrf())

    def setup(self, code: str, username: str, passphrase: str) -> Page:
        """First-run setup with the one-time code; confirms the recovery key was saved.

        The recovery key the page showed (once) is kept in ``recovery_key``, as the
        person setting up writes it down.
        """
        page = self.submit("/setup", {"code": code, "username": username,
                                      "passphrase": passphrase, "repeat": passphrase})
        if page.status != 200 or "/setup/confirm" not in page.text:
            return page
        shown = _RECOVERY_KEY.search(page.text)
        self.recovery_key = html.unescape(shown.group(1)).strip() if shown else ""
        return self.post("/setup/confirm", {"saved": "yes"}, page.csrf())

    def login(self, username: str, passphrase: str) -> Page:
        """Log in (which unlocks the device when it is locked)."""
        return self.submit("/login", {"username": username, "passphrase": passphrase})
