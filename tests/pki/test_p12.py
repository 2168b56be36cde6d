"""PKCS#12 bundles as real importers read them: openssl and NSS pk12util."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from pki.keys import PkiError
from pki.p12 import build_p12, generate_p12_password
from tests.pki.conftest import CaFiles, openssl


def _bundle(ca_files: CaFiles, tmp_path: Path, profile: str) -> tuple[Path, str]:
    cert, key = ca_files.client("alice")
    password = generate_p12_password()
    data = build_p12(key, cert, ca_files.ca.chain, password=password.encode(),
                     profile=profile, friendly_name="alice (Example Corp)")  # type: ignore[arg-type]
    path = tmp_path / f"alice-{profile}.p12"
    path.write_bytes(data)
    return path, password


def _legacy_flag() -> list[str]:
    # OpenSSL 3 moved 3DES-based PKCS#12 into the legacy provider for reading.
    proc = openssl("pkcs12", "-help")
    return ["-legacy"] if "-legacy" in proc.stdout + proc.stderr else []


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("modern", [r"PBES2, PBKDF2, AES-256-CBC", r"MAC: sha256"]),
        ("compat", [r"pbeWithSHA1And3-KeyTripleDES-CBC", r"MAC: sha1"]),
    ],
)
def test_openssl_reads_both_profiles(ca_files: CaFiles, tmp_path: Path, profile: str,
                                     expected: list[str]) -> None:
    path, password = _bundle(ca_files, tmp_path, profile)
    extra = _legacy_flag() if profile == "compat" else []
    proc = openssl("pkcs12", *extra, "-info", "-in", str(path), "-passin", f"pass:{password}",
                   "-nokeys", "-noout")
    assert proc.returncode == 0, proc.stderr
    report = proc.stdout + proc.stderr
    for pattern in expected:
        assert re.search(pattern, report, re.IGNORECASE), report
    wrong = openssl("pkcs12", *extra, "-info", "-in", str(path), "-passin", "pass:wrong",
                    "-nokeys", "-noout")
    assert wrong.returncode != 0


def test_bundle_holds_key_cert_chain_and_friendly_name(ca_files: CaFiles, tmp_path: Path) -> None:
    path, password = _bundle(ca_files, tmp_path, "modern")
    loaded = pkcs12.load_pkcs12(path.read_bytes(), password.encode())
    assert loaded.cert is not None and loaded.key is not None
    assert loaded.cert.friendly_name == b"alice (Example Corp)"
    assert [c.certificate for c in loaded.additional_certs] == ca_files.ca.chain
    assert loaded.key.public_key() == loaded.cert.certificate.public_key()


def test_nss_pk12util_imports_the_modern_profile(ca_files: CaFiles, tmp_path: Path) -> None:
    if shutil.which("pk12util") is None or shutil.which("certutil") is None:
        pytest.skip("NSS tools (libnss3-tools) are not installed")
    path, password = _bundle(ca_files, tmp_path, "modern")
    db = tmp_path / "nssdb"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True,
                   capture_output=True, timeout=60)
    proc = subprocess.run(["pk12util", "-i", str(path), "-d", f"sql:{db}", "-W", password],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                             text=True, timeout=60).stdout
    assert "alice (Example Corp)" in listing


def test_password_is_strong_and_typeable() -> None:
    passwords = {generate_p12_password() for _ in range(100)}
    assert len(passwords) == 100
    for pw in passwords:
        assert re.fullmatch(r"([A-Za-z2-9]{5}-){3}[A-Za-z2-9]{5}", pw)
        assert not set(pw) & set("0O1lI")


@pytest.mark.parametrize(("password", "profile", "message"), [
    (b"", "modern", "needs a password"),
    (b"pw", "legacy", "unknown PKCS#12 profile"),
])
def test_bad_arguments_are_refused(ca_files: CaFiles, password: bytes, profile: str,
                                   message: str) -> None:
    cert, key = ca_files.client()
    with pytest.raises(PkiError, match=message):
        build_p12(key, cert, [], password=password, profile=profile,  # type: ignore[arg-type]
                  friendly_name="x")
