"""The gateway's own TLS certificate: a new key and certificate for given names.

Used when an app gets a hostname that ``init`` did not name, or when the server
certificate nears its end. Writes the certificate (followed by the issuing CA,
as ``tls.cert`` expects) and its key (0600, unencrypted: the server starts
unattended); refuses to overwrite either file. Does not touch the live
``tls.cert``/``tls.key`` nor the database: the admin points the config at the new
files (or moves them into place) and restarts.

Takes plain values and returns what it wrote. Never prompts, prints or exits;
refuses with ``ManageError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from gateway.manage.ca import CaLoader
from gateway.manage.errors import ManageError
from gateway.manage.setup import SERVER_CERT_DAYS, is_host
from pki.ca import issue_server_cert
from pki.keys import KeyType, generate_key, key_to_pem, write_public_file, write_secret_file


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """What ``issue_server_certificate`` wrote."""

    cert_path: Path
    key_path: Path
    names: tuple[str, ...]
    serial: int
    not_after: datetime


def key_path_for(cert_path: Path) -> Path:
    """``server.pem`` -> ``server-key.pem``, next to it (the layout ``init`` uses)."""
    return cert_path.with_name(f"{cert_path.stem}-key{cert_path.suffix or '.pem'}")


def issue_server_certificate(load_ca: CaLoader, names: tuple[str, ...], *, out: Path,
                             key_out: Path, key_type: KeyType, days: int = SERVER_CERT_DAYS,
                             now: datetime) -> ServerCertificate:
    """Issue a server certificate for ``names`` (DNS names or IP addresses)."""
    if not names:
        raise ManageError("a server certificate needs at least one name")
    for name in names:
        if not is_host(name):
            raise ManageError(f"'{name}' is not a hostname or IP address")
    for path in (out, key_out):
        if path.exists():
            raise ManageError(f"{path} already exists; refusing to overwrite it")
    ca = load_ca()
    key = generate_key(key_type)
    cert = issue_server_cert(ca, key.public_key(), list(names), days=days, now=now)
    write_secret_file(key_out, key_to_pem(key, None))
    write_public_file(out, cert.public_bytes(Encoding.PEM)
                      + ca.issuing_cert.public_bytes(Encoding.PEM))
    return ServerCertificate(out, key_out, names, cert.serial_number, cert.not_valid_after_utc)
