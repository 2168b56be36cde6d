"""The gateway's own TLS certificate: a new key and certificate for given names.

Used when an app gets a hostname that ``init`` did not name, or when the server
certificate nears its end. Writes the certificate (followed by the issuing CA,
as ``tls.cert`` expects) and its key (0600, unencrypted: the server starts
unattended); refuses to overwrite either file. Does not touch the live
``tls.cert``/``tls.key`` nor the database: the admin points the config at the new
files (or moves them into place) and restarts.

``renew_server_certificate`` is the exception, used by the running gateway's
renewer: it replaces the live pair in place with a certificate for the same names
and lifetime and a new key, each file written atomically (the key first: a reader
between the two writes sees a pair that does not match and retries).

Takes plain values and returns what it wrote. Never prompts, prints or exits;
refuses with ``ManageError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.manage.ca import CaLoader
from gateway.manage.errors import ManageError
from gateway.manage.setup import SERVER_CERT_DAYS, is_host
from pki.ca import CertificateAuthority, issue_server_cert
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


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses of the certificate's SAN, in order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return (*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))


def read_leaf(cert_path: Path) -> x509.Certificate:
    """The first certificate of a PEM file (``tls.cert`` holds the leaf, then the CA)."""
    try:
        return x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise ManageError(f"cannot read {cert_path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ManageError(f"{cert_path} does not start with a PEM certificate") from None


def issued_by(cert: x509.Certificate, issuing: x509.Certificate) -> bool:
    """Whether ``issuing`` signed ``cert`` (a certificate from a public CA is not ours)."""
    try:
        cert.verify_directly_issued_by(issuing)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def renew_server_certificate(ca: CertificateAuthority, cert_path: Path, key_path: Path, *,
                             now: datetime) -> ServerCertificate:
    """Replace the live server certificate with one for the same names and lifetime."""
    old = read_leaf(cert_path)
    names = certificate_names(old)
    if not names:
        raise ManageError(f"{cert_path} names no host (no subjectAltName); issue a new "
                          "one with `certgate cert issue-server`")
    lifetime = old.not_valid_after_utc - old.not_valid_before_utc
    key_type: KeyType = "rsa3072" if isinstance(old.public_key(), rsa.RSAPublicKey) \
        else "ec-p256"
    key = generate_key(key_type)
    cert = issue_server_cert(ca, key.public_key(), list(names),
                             days=max(1, lifetime.days), now=now)
    write_secret_file(key_path, key_to_pem(key, None))
    write_public_file(cert_path, cert.public_bytes(Encoding.PEM)
                      + ca.issuing_cert.public_bytes(Encoding.PEM))
    return ServerCertificate(cert_path, key_path, names, cert.serial_number,
                             cert.not_valid_after_utc)
