"""OCSP responses checked by `openssl ocsp -respin`, plus the refusal paths."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki.ca import build_ca, issue_ocsp_signer
from pki.keys import generate_key
from pki.ocsp import OcspStatus, build_ocsp_response
from tests.pki.conftest import NOW, CaFiles, openssl, write_pem


def _request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None,
             algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("delegated", [True, False])
@pytest.mark.parametrize(("state", "expected"), [("good", "good"), ("revoked", "revoked"),
                                                 ("unknown", "unknown")])
def test_openssl_reads_the_status(ca_files: CaFiles, tmp_path: Path, delegated: bool,
                                  state: str, expected: str) -> None:
    leaf, _ = ca_files.client()
    signer = (ca_files.ca.issuing_cert, ca_files.ca.issuing_key)
    if delegated:
        key = generate_key()
        signer = (issue_ocsp_signer(ca_files.ca, key.public_key(), hostname="gw.example.test",
                                    days=30, now=NOW), key)
    status = OcspStatus(state, NOW - timedelta(hours=1) if state == "revoked" else None,  # type: ignore[arg-type]
                        x509.ReasonFlags.key_compromise if state == "revoked" else None)
    der = build_ocsp_response(_request(leaf, ca_files.ca.issuing_cert),
                              lambda serial: status if serial == leaf.serial_number
                              else OcspStatus("unknown"), ca_files.ca.issuing_cert,
                              signer=signer, now=NOW)
    resp_path = tmp_path / "resp.der"
    resp_path.write_bytes(der)
    chain = write_pem(tmp_path / "chain.pem", ca_files.ca.issuing_cert, ca_files.ca.root_cert)
    proc = openssl("ocsp", "-respin", str(resp_path), "-issuer", str(ca_files.issuing_pem),
                   "-cert", str(write_pem(tmp_path / "leaf.pem", leaf)), "-CAfile", str(chain))
    out = proc.stdout + proc.stderr
    assert "Response verify OK" in out, out
    assert f"{tmp_path / 'leaf.pem'}: {expected}" in out
    if state == "revoked":
        assert "keyCompromise" in out


def test_nonce_is_echoed_and_sha256_cert_ids_work(ca_files: CaFiles) -> None:
    leaf, _ = ca_files.client()
    der = build_ocsp_response(_request(leaf, ca_files.ca.issuing_cert, nonce=b"0123456789abcdef",
                                       algorithm=hashes.SHA256()),
                              lambda _: OcspStatus("good"), ca_files.ca.issuing_cert,
                              signer=(ca_files.ca.issuing_cert, ca_files.ca.issuing_key),
                              now=NOW)
    resp = ocsp.load_der_ocsp_response(der)
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    nonce = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"0123456789abcdef"
    assert resp.next_update_utc == NOW + timedelta(hours=1)


@pytest.mark.parametrize("payload", [b"", b"\x30\x03\x02\x01\x00", b"not der at all" * 10])
def test_malformed_requests_get_malformed_request(ca_files: CaFiles, payload: bytes) -> None:
    resp = ocsp.load_der_ocsp_response(
        build_ocsp_response(payload, lambda _: OcspStatus("good"), ca_files.ca.issuing_cert,
                            signer=(ca_files.ca.issuing_cert, ca_files.ca.issuing_key), now=NOW))
    assert resp.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_requests_about_another_issuer_are_unauthorized(ca_files: CaFiles) -> None:
    other, _ = build_ca("Other Corp", now=NOW)
    resp = ocsp.load_der_ocsp_response(build_ocsp_response(
        _request(other.issuing_cert, other.issuing_cert), lambda _: OcspStatus("good"),
        ca_files.ca.issuing_cert, signer=(ca_files.ca.issuing_cert, ca_files.ca.issuing_key),
        now=NOW))
    assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
