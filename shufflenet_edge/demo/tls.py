"""A self-signed certificate for ``edge demo --https`` (a phone on Wi-Fi needs a secure context
for the camera, the service worker and WASM threads), cached per set of host names."""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
from pathlib import Path

from ..io_utils import atomic_path
from ..user_cache import cache_root
from .net import lan_address

DAYS = 825  # the longest validity Android/Chrome accept for a leaf certificate


def _cache_dir() -> Path:
    return cache_root() / "demo-tls"


def names_for(host: str) -> list[str]:
    names = {"localhost", "127.0.0.1", "::1", socket.gethostname()}
    if host not in ("0.0.0.0", "", "::"):
        names.add(host)
    ip = lan_address() if host in ("0.0.0.0", "", "::") else None
    if ip:
        names.add(ip)
    return sorted(names)


def certificate(host: str) -> tuple[str, str]:
    """(cert.pem, key.pem) covering localhost, this host's name and its LAN address."""
    names = names_for(host)
    key_id = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    cert_path, key_path = _cache_dir() / f"{key_id}.crt.pem", _cache_dir() / f"{key_id}.key.pem"
    if cert_path.is_file() and key_path.is_file():
        return str(cert_path), str(key_path)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shufflenet-edge demo")])
    alt = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    with atomic_path(key_path) as tmp:
        tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        tmp.chmod(0o600)
    with atomic_path(cert_path) as tmp:
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)
