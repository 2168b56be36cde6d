"""RFC 6960 OCSP responses, as a pure function of a request and a status lookup.

A request may list several certificates (RFC 6960 4.1.1; ``openssl ocsp -cert a
-cert b`` sends one): each gets its SingleResponse in one signed response.
``cryptography`` reads and builds one at a time, so the list is split into
single requests and their answers are joined (``pki.der``) and signed again.
Malformed requests (or more than ``MAX_REQUESTS``) get a ``malformedRequest``
response and requests about another issuer get ``unauthorized``; never an
exception. Responses are signed by a delegated responder (id-kp-OCSPSigning)
when one is given, else by the issuing CA, and echo the request's nonce.

Must not do I/O: the caller supplies the lookup (from memory) and the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509 import ocsp

from pki import der
from pki.keys import PrivateKey

MAX_REQUESTS = 16


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
        singles = split_ocsp_request(request_der)
    except (ValueError, IndexError):
        singles = []
    if len(singles) > 1 and len(singles) <= MAX_REQUESTS:
        answers = [_answer_one(single, lookup, issuer, signer=signer, now=now,
                               validity=validity) for single in singles]
        for answer in answers:
            if ocsp.load_der_ocsp_response(answer).response_status != (
                    ocsp.OCSPResponseStatus.SUCCESSFUL):
                return answer
        return _joined(answers, signer[1])
    if len(singles) > MAX_REQUESTS:
        request_der = b""  # malformed: each certificate costs a signature
    return _answer_one(request_der, lookup, issuer, signer=signer, now=now, validity=validity)


def split_ocsp_request(request_der: bytes) -> list[bytes]:
    """One single-certificate request per entry of the request list, each keeping the
    request's own extensions (the nonce); the optional signature is dropped."""
    (tbs,) = der.children(request_der)[:1]
    fields = der.children(tbs)  # [0] version, [1] requestorName, requestList, [2] extensions
    at = next((i for i, f in enumerate(fields) if der.tag_of(f) == der.SEQUENCE), None)
    if at is None:
        raise ValueError("no request list")
    return [der.encode(der.SEQUENCE, der.encode(der.SEQUENCE, b"".join(
        [*fields[:at], der.encode(der.SEQUENCE, one), *fields[at + 1:]])))
        for one in der.children(fields[at])]


def _basic(response_der: bytes) -> tuple[bytes, list[bytes]]:
    """(responseType OID, [tbsResponseData, signatureAlgorithm, signature, certs...])."""
    _, wrapped = der.children(response_der)
    oid, octets = der.children(der.children(wrapped)[0])
    return oid, der.children(der.content_of(octets))


def _responses_at(tbs_fields: list[bytes]) -> int:
    # [0] version, responderID ([1] or [2]), producedAt, responses (the SEQUENCE), [1] ext.
    return next(i for i, f in enumerate(tbs_fields) if der.tag_of(f) == der.SEQUENCE)


def _joined(answers: list[bytes], key: PrivateKey) -> bytes:
    """The first answer with every answer's SingleResponse in its list, signed again."""
    status = der.children(answers[0])[0]
    oid, basic = _basic(answers[0])
    fields = der.children(basic[0])
    at = _responses_at(fields)
    singles = b""
    for answer in answers:
        theirs = der.children(_basic(answer)[1][0])
        singles += der.content_of(theirs[_responses_at(theirs)])
    tbs = der.encode(der.SEQUENCE, b"".join(
        [*fields[:at], der.encode(der.SEQUENCE, singles), *fields[at + 1:]]))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    else:
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    new_basic = der.encode(der.SEQUENCE, b"".join(
        [tbs, basic[1], der.encode(der.BIT_STRING, b"\x00" + signature), *basic[3:]]))
    response_bytes = der.encode(der.SEQUENCE, oid + der.encode(der.OCTET_STRING, new_basic))
    return der.encode(der.SEQUENCE, status + der.encode(0xA0, response_bytes))


def _answer_one(
    request_der: bytes,
    lookup: Callable[[int], OcspStatus],
    issuer: x509.Certificate,
    *,
    signer: tuple[x509.Certificate, PrivateKey],
    now: datetime,
    validity: timedelta,
) -> bytes:
    """The response to a request about one certificate (the ``cryptography`` path)."""
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
