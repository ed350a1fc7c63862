"""The web page's self-signed TLS certificate.

Made once at install time with the ``cryptography`` package. Its names
cover every way a clinician may type the address: the host name, the
``.local`` name that mDNS announces, ``localhost`` and the machine's LAN
addresses. The validity is 825 days, the longest Apple devices accept;
``holdnote web init-tls --force`` renews it. People check its SHA-256
fingerprint once when their browser first warns about it.
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.errors import HoldnoteError
from appliance.fsutil import atomic_write

VALID_DAYS = 825
SIOCGIFADDR = 0x8915


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as browsers show it: AB:CD:…"""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _ipv4_addresses() -> list[ipaddress.IPv4Address]:
    addresses = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("256s", name.encode()[:15])
            reply = array.array("B", request)
            try:
                # With a mutable buffer, ioctl writes the answer into it and returns 0.
                fcntl.ioctl(sock.fileno(), SIOCGIFADDR, reply)
            except OSError:  # the interface has no IPv4 address
                continue
        addresses.append(ipaddress.IPv4Address(bytes(reply[20:24])))
    return addresses


def _ipv6_addresses() -> list[ipaddress.IPv6Address]:
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return []
    return [ipaddress.IPv6Address(int(line.split()[0], 16)) for line in lines if line.split()]


def lan_addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The machine's own addresses (loopback and IPv6 link-local left out)."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [
        *_ipv4_addresses(), *_ipv6_addresses()]
    for ip in candidates:
        # fe80:: addresses need a zone id in a URL, so no browser uses them with TLS.
        if not ip.is_loopback and not (ip.version == 6 and ip.is_link_local) and ip not in found:
            found.append(ip)
    return found


def subject_names(hostname: str | None = None) -> tuple[list[str], list]:
    """DNS names and IP addresses the certificate must cover."""
    host = (hostname or socket.gethostname()).strip().rstrip(".").lower()
    short = host.split(".", 1)[0]
    names = list(dict.fromkeys([host, short, f"{short}.local", "localhost"]))
    ips = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"), *lan_addresses()]
    return names, list(dict.fromkeys(ips))


def make_certificate(cert_path: Path, key_path: Path, now: datetime | None = None) -> str:
    """Create a new key and self-signed certificate; return its fingerprint."""
    now = now or datetime.now(UTC)
    names, ips = subject_names()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Holdnote")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in names] + [x509.IPAddress(ip) for ip in ips]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=False, content_commitment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    for path in (cert_path, key_path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The key first: a certificate without its key would look complete but fail.
    atomic_write(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), mode=0o600)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return fingerprint(cert)


def load(cert_path: Path) -> x509.Certificate:
    """The certificate at ``cert_path``; a clear error if it is missing or damaged."""
    try:
        return x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except FileNotFoundError:
        raise HoldnoteError(
            f"no TLS certificate at {cert_path}; run 'holdnote web init-tls'") from None
    except ValueError:
        raise HoldnoteError(
            f"{cert_path} is not a PEM certificate; run 'holdnote web init-tls --force'"
        ) from None


@dataclass(frozen=True)
class CertInfo:
    """What the device page tells IT about the certificate."""

    fingerprint: str
    expires: datetime
    names: tuple[str, ...]


def describe(cert_path: Path) -> CertInfo | None:
    """Fingerprint, expiry and names of the certificate, or ``None`` if unreadable."""
    try:
        cert = load(cert_path)
    except HoldnoteError:
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = (*san.get_values_for_type(x509.DNSName),
                 *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(fingerprint(cert), cert.not_valid_after_utc, names)
