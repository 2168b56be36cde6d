"""The CA: chains that OpenSSL accepts, profiles that an RFC 5280 linter accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.ca import (
    CA_FILES,
    build_ca,
    issue_ocsp_signer,
    issue_server_cert,
    load_ca,
    load_ca_certificates,
    new_serial,
    save_ca,
    sign_csr,
)
from pki.keys import PkiError, WrongPassphraseError, generate_key
from tests.pki.conftest import NOW, CaFiles, openssl, write_pem

LINT_CERT = Path(sys.executable).parent / "lint_pkix_cert"


def lint_cert(path: Path) -> None:
    """pkilint's RFC 5280 certificate linter must report nothing at ERROR or above."""
    proc = subprocess.run([str(LINT_CERT), "lint", "-s", "ERROR", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_client_cert_profile(ca_files: CaFiles) -> None:
    cert, _ = ca_files.client("alice")
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.test"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://gw.example.test/.certgate/users/alice"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_files.ca.issuing_cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://pki.example.test/crl"
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == "http://pki.example.test/ocsp"
    assert 0 < cert.serial_number < 2**159


def test_issuing_ca_has_path_len_zero(ca_files: CaFiles) -> None:
    bc = ca_files.ca.issuing_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ca_files.ca.issuing_cert.issuer == ca_files.ca.root_cert.subject
    ca_files.ca.issuing_cert.verify_directly_issued_by(ca_files.ca.root_cert)


def test_openssl_verifies_the_chain(ca_files: CaFiles, tmp_path: Path) -> None:
    cert, _ = ca_files.client()
    leaf = write_pem(tmp_path / "leaf.pem", cert)
    proc = openssl("verify", "-purpose", "sslclient", "-CAfile", str(ca_files.root_pem),
                   "-untrusted", str(ca_files.issuing_pem), str(leaf))
    assert proc.returncode == 0, proc.stderr
    assert f"{leaf}: OK" in proc.stdout


def test_openssl_rejects_a_cert_from_another_ca(ca_files: CaFiles, tmp_path: Path) -> None:
    other, _ = build_ca("Evil Corp", now=NOW)
    from pki.ca import issue_client_cert

    key = generate_key()
    cert = issue_client_cert(other, key.public_key(), user="alice", email="a@x.test", days=5,
                             now=NOW, crl_url=None, ocsp_url=None)
    leaf = write_pem(tmp_path / "evil.pem", cert)
    proc = openssl("verify", "-CAfile", str(ca_files.root_pem), "-untrusted",
                   str(ca_files.issuing_pem), str(leaf))
    assert proc.returncode != 0


@pytest.mark.parametrize("kind", ["client", "server", "ocsp", "root", "issuing"])
def test_certificates_pass_the_rfc5280_linter(ca_files: CaFiles, tmp_path: Path,
                                              kind: str) -> None:
    key = generate_key()
    if kind == "client":
        cert, _ = ca_files.client("bob")
    elif kind == "server":
        cert = issue_server_cert(ca_files.ca, key.public_key(), ["gw.example.test", "127.0.0.1"],
                                 days=90, now=NOW)
    elif kind == "ocsp":
        cert = issue_ocsp_signer(ca_files.ca, key.public_key(), hostname="gw.example.test",
                                 days=90, now=NOW)
    elif kind == "root":
        cert = ca_files.ca.root_cert
    else:
        cert = ca_files.ca.issuing_cert
    lint_cert(write_pem(tmp_path / f"{kind}.pem", cert))


def test_rsa3072_ca_works(tmp_path: Path) -> None:
    ca, _ = build_ca("RSA Corp", key_type="rsa3072", now=NOW)
    assert isinstance(ca.issuing_key, rsa.RSAPrivateKey) and ca.issuing_key.key_size == 3072
    key = generate_key("rsa3072")
    server = issue_server_cert(ca, key.public_key(), ["gw.example.test"], days=30, now=NOW)
    ku = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_encipherment
    lint_cert(write_pem(tmp_path / "rsa-server.pem", server))


def test_server_cert_sans(ca_files: CaFiles) -> None:
    key = generate_key()
    cert = issue_server_cert(ca_files.ca, key.public_key(), ["gw.example.test", "::1"],
                             days=30, now=NOW)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.example.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["::1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(PkiError, match="at least one hostname"):
        issue_server_cert(ca_files.ca, key.public_key(), [], days=30, now=NOW)


def test_client_cert_without_any_san_is_refused(ca_files: CaFiles) -> None:
    with pytest.raises(PkiError, match="email address or a URI"):
        ca_files.client("nobody", email=None, uri=None)


def test_leaf_never_outlives_the_issuing_ca(ca_files: CaFiles) -> None:
    cert, _ = ca_files.client(days=100_000)
    assert cert.not_valid_after_utc <= ca_files.ca.issuing_cert.not_valid_after_utc


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, ca_flag: bool = False
         ) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ceo")]))
    if ca_flag:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA256())


def test_sign_csr_ignores_requested_subject_and_extensions(ca_files: CaFiles) -> None:
    key = generate_key()
    cert = sign_csr(ca_files.ca, _csr(key, ca_flag=True), user="carol", email="c@x.test", days=10,
                    now=NOW, crl_url=None, ocsp_url=None)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "carol"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.public_key() == key.public_key()


def test_sign_csr_refuses_weak_or_tampered(ca_files: CaFiles) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(PkiError, match="at least 2048"):
        sign_csr(ca_files.ca, _csr(weak), user="x", email="x@x.test", days=1, now=NOW,
                 crl_url=None, ocsp_url=None)
    good = _csr(generate_key())
    der = bytearray(good.public_bytes(__import__("cryptography").hazmat.primitives
                                      .serialization.Encoding.DER))
    der[-5] ^= 0xFF  # flip bits inside the signature
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(PkiError, match="does not verify"):
        sign_csr(ca_files.ca, tampered, user="x", email="x@x.test", days=1, now=NOW,
                 crl_url=None, ocsp_url=None)


def test_save_and_load_ca_with_passphrase(ca_files: CaFiles, tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    save_ca(ca_dir, ca_files.ca, ca_files.root_key, b"correct horse battery")
    for name in ("root-key.pem", "issuing-key.pem"):
        assert (ca_dir / name).stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in (ca_dir / name).read_bytes()
    with pytest.raises(WrongPassphraseError):
        load_ca(ca_dir, None)
    with pytest.raises(WrongPassphraseError):
        load_ca(ca_dir, b"wrong")
    loaded = load_ca(ca_dir, b"correct horse battery")
    assert loaded.issuing_cert == ca_files.ca.issuing_cert
    assert load_ca_certificates(ca_dir) == (ca_files.ca.root_cert, ca_files.ca.issuing_cert)
    # openssl agrees that the key needs the passphrase
    if shutil.which("openssl"):
        proc = openssl("pkey", "-in", str(ca_dir / "issuing-key.pem"), "-passin", "pass:nope",
                       "-noout")
        assert proc.returncode != 0


def test_save_ca_refuses_to_overwrite(ca_files: CaFiles, tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    save_ca(ca_dir, ca_files.ca, ca_files.root_key, None)
    before = {n: (ca_dir / n).read_bytes() for n in CA_FILES}
    other, other_root = build_ca("Other", now=NOW)
    with pytest.raises(PkiError, match="already exists"):
        save_ca(ca_dir, other, other_root, None)
    assert {n: (ca_dir / n).read_bytes() for n in CA_FILES} == before


def test_load_ca_missing_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="certgate init"):
        load_ca_certificates(tmp_path / "nope")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10))
def test_new_serial_is_positive_bounded_and_distinct(_: int) -> None:
    serials = {new_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(2**127 <= s < 2**128 for s in serials)


def test_not_before_allows_clock_skew(ca_files: CaFiles) -> None:
    cert, _ = ca_files.client()
    assert NOW - cert.not_valid_before_utc == timedelta(minutes=5)
