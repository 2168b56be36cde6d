"""Shared PKI fixtures: a CA built with our own ``pki`` and helpers to write files.

Other suites import ``make_ca`` / ``write_pem`` from here to build real certificates.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pki.ca import CertificateAuthority, build_ca, issue_client_cert, user_uri
from pki.keys import PrivateKey, generate_key

NOW = datetime.now(UTC).replace(microsecond=0)
CRL_URL = "http://pki.example.test/crl"
OCSP_URL = "http://pki.example.test/ocsp"


@dataclass
class CaFiles:
    ca: CertificateAuthority
    root_key: PrivateKey
    dir: Path

    @property
    def root_pem(self) -> Path:
        return write_pem(self.dir / "root.pem", self.ca.root_cert)

    @property
    def issuing_pem(self) -> Path:
        return write_pem(self.dir / "issuing.pem", self.ca.issuing_cert)

    def client(self, user: str = "alice", **kw: object) -> tuple[x509.Certificate, PrivateKey]:
        key = generate_key()
        args: dict[str, object] = {"email": f"{user}@example.test", "days": 30, "now": NOW,
                                   "crl_url": CRL_URL, "ocsp_url": OCSP_URL,
                                   "uri": user_uri("gw.example.test", user)}
        args.update(kw)
        cert = issue_client_cert(self.ca, key.public_key(), user=user, **args)  # type: ignore[arg-type]
        return cert, key


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))
    return path


def make_ca(tmp_path: Path, name: str = "Example Corp") -> CaFiles:
    ca, root_key = build_ca(name, now=NOW)
    return CaFiles(ca, root_key, tmp_path)


@pytest.fixture
def ca_files(tmp_path: Path) -> CaFiles:
    return make_ca(tmp_path)


def openssl(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return subprocess.run(["openssl", *args], capture_output=True, text=True, input=None
                          if input is None else input.decode(), timeout=60)
