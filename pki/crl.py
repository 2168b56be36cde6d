"""RFC 5280 certificate revocation lists, signed by the issuing CA.

Entries carry the revocation date, a reason code (the extension is omitted rather
than written as ``unspecified``, as RFC 5280 5.3.1 recommends) and, for key
compromise, the invalidity date. No issuingDistributionPoint: a full CRL.

Pure: returns the CRL object. Must not choose CRL numbers (the database does,
so they increase across processes and nodes) and must not write files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from pki.ca import CertificateAuthority
from pki.keys import PkiError

REASONS: Mapping[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "removeFromCRL": x509.ReasonFlags.remove_from_crl,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def reason_from_name(name: str) -> x509.ReasonFlags:
    """The reason flag for an RFC 5280 reason name such as ``keyCompromise``."""
    try:
        return REASONS[name]
    except KeyError:
        valid = ", ".join(REASONS)
        raise PkiError(f"unknown revocation reason '{name}'; use one of: {valid}") from None


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked (or held) certificate as it appears in the CRL."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None
    invalidity_date: datetime | None = None


def build_crl(
    ca: CertificateAuthority,
    entries: Iterable[RevokedEntry],
    *,
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A full CRL with CRL number and AKI, signed by the issuing key."""
    if number < 1:
        raise PkiError("a CRL number must be positive")
    if next_update <= this_update:
        raise PkiError("a CRL's nextUpdate must come after its thisUpdate")
    ski = ca.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.issuing_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
        )
        if entry.reason is not None and entry.reason is not x509.ReasonFlags.unspecified:
            revoked = revoked.add_extension(x509.CRLReason(entry.reason), critical=False)
        if entry.invalidity_date is not None and entry.reason is x509.ReasonFlags.key_compromise:
            revoked = revoked.add_extension(
                x509.InvalidityDate(entry.invalidity_date.replace(tzinfo=None)), critical=False
            )
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(ca.issuing_key, hashes.SHA256())
