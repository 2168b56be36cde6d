"""Handing out a key: a fresh key pair, its certificate, and the .p12 file holding both.

``write_bundle`` writes the PKCS#12 file (0600, atomically) and refuses to overwrite
anything. Knows nothing about the database: ``certs`` records what it issued.
Must not log passwords or key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from gateway.config import Config
from gateway.manage.errors import ManageError
from gateway.store.db import serial_hex
from gateway.store.records import UserRecord
from pki.ca import CertificateAuthority, issue_client_cert, user_uri
from pki.keys import PrivateKey, generate_key, write_secret_file
from pki.p12 import P12Profile, build_p12, generate_p12_password

MIN_P12_PASSWORD = 8
P12_PROFILES: tuple[P12Profile, ...] = ("modern", "compat")


@dataclass(frozen=True, slots=True)
class BundleRequest:
    """How to package a new key: the file, its password (None: generate one), profile."""

    out: Path | None = None
    password: str | None = None
    profile: P12Profile | None = None


def refuse_existing(path: Path) -> None:
    if path.exists():
        raise ManageError(f"{path} already exists; refusing to overwrite it")


def check_p12_password(password: str) -> None:
    if len(password) < MIN_P12_PASSWORD:
        raise ManageError(f"the PKCS#12 password must have at least {MIN_P12_PASSWORD} "
                          "characters")


def p12_password(given: str | None) -> str:
    """The given password (checked), else a generated one."""
    if given is None:
        return generate_p12_password()
    check_p12_password(given)
    return given


def bundle_path(out: Path | None, user: str, serial: int) -> Path:
    """``out``, or USER-SERIAL.p12 in the working directory; never an existing file."""
    path = out or Path(f"{user}-{serial_hex(serial)[:8]}.p12")
    refuse_existing(path)
    return path


def user_uri_for(config: Config, user: str) -> str | None:
    return user_uri(config.public_hostnames[0], user) if config.public_hostnames else None


def issue_with_new_key(config: Config, ca: CertificateAuthority, user: UserRecord, *,
                       days: int, now: datetime) -> tuple[x509.Certificate, PrivateKey]:
    """A new key of the CA's kind and the client certificate for it."""
    key = generate_key("ec-p256" if hasattr(ca.issuing_key, "curve") else "rsa3072")
    cert = issue_client_cert(ca, key.public_key(), user=user.name, email=user.email,
                             days=days, now=now, crl_url=config.pki.crl_url,
                             ocsp_url=config.pki.ocsp_url, uri=user_uri_for(config, user.name))
    return cert, key


def write_bundle(ca: CertificateAuthority, cert: x509.Certificate, key: PrivateKey,
                 path: Path, *, password: str, profile: P12Profile) -> None:
    """Write key + certificate + chain as a 0600 PKCS#12 file."""
    org = ca.root_cert.subject.rfc4514_string()
    data = build_p12(key, cert, ca.chain, password=password.encode("utf-8"), profile=profile,
                     friendly_name=f"{cert.subject.rfc4514_string()} ({org})")
    write_secret_file(path, data)
