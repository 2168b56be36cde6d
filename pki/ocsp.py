"""RFC 6960 OCSP responses, as a pure function of a request and a status lookup.

Malformed requests get a ``malformedRequest`` response and requests about another
issuer get ``unauthorized``; never an exception. Responses are signed by a
delegated responder (id-kp-OCSPSigning) when one is given, else by the issuing CA,
and echo the request's nonce.

Must not do I/O: the caller supplies the lookup (from memory) and the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki.keys import PrivateKey


@dataclass(frozen=True)
class OcspStatus:
    """What the CA knows about one serial."""

    state: Literal["good", "revoked", "unknown"]
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 - RFC 6960 clients default to SHA-1 CertIDs
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def _issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """The CertID issuer hashes (RFC 6960 4.1.1) for our issuing CA.

    The name hash covers the issuer's DER subject. The key hash covers the issuer's
    public key bits; cryptography derives it from the ``issuer`` argument of a
    request, so a probe request built with the issuing CA as issuer yields it.
    """
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuer.subject.public_bytes())
    probe = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, algorithm).build()
    return name_hash.finalize(), probe.issuer_key_hash


def build_ocsp_response(
    request_der: bytes,
    lookup: Callable[[int], OcspStatus],
    issuer: x509.Certificate,
    *,
    signer: tuple[x509.Certificate, PrivateKey],
    now: datetime,
    validity: timedelta = timedelta(hours=1),
) -> bytes:
    """Answer one OCSP request about certificates of ``issuer`` (DER in, DER out).

    ``signer`` is the issuing CA itself (its certificate and key) or a delegated
    responder it issued; a delegated responder's certificate goes into the response.
    """
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = _HASHES.get(request.hash_algorithm.name)
        serial = request.serial_number
        issuer_name_hash, issuer_key_hash = request.issuer_name_hash, request.issuer_key_hash
    except (ValueError, TypeError, IndexError, NotImplementedError):
        return ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        ).public_bytes(serialization.Encoding.DER)
    if algorithm is None or (issuer_name_hash, issuer_key_hash) != _issuer_hashes(
        issuer, algorithm
    ):
        return ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.UNAUTHORIZED
        ).public_bytes(serialization.Encoding.DER)

    status = lookup(serial)
    cert_status = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status.state]
    revoked_at = (status.revoked_at or now) if status.state == "revoked" else None
    reason = status.reason if status.state == "revoked" else None
    signer_cert, signer_key = signer
    certs = [] if signer_cert == issuer else [signer_cert]
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=issuer_name_hash,
            issuer_key_hash=issuer_key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=cert_status,
            this_update=now,
            next_update=now + validity,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    )
    if certs:
        builder = builder.certificates(certs)
    for ext in request.extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            builder = builder.add_extension(ext.value, critical=False)
    response = builder.sign(signer_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)
