"""Publishing a CRL against a real store and a CA built with our ``pki``: the number and
thisUpdate increase, every revoked or held serial is listed with its reason, the
signed DER is recorded; ``cryptography`` checks the result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from gateway.config import Config
from gateway.manage.crl import CrlNote, publish_crl, republish_crl
from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store
from pki.ca import CertificateAuthority, build_ca
from pki.keys import PkiError

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(hours=24)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    built, _root_key = build_ca("Example Corp", now=NOW - timedelta(days=1))
    return built


def cert(serial: int, user: str = "alice") -> CertRecord:
    return CertRecord(serial=serial, user=user, fingerprint=f"{serial:064x}",
                      subject=f"CN={user}", not_before=NOW - DAY, not_after=NOW + 30 * DAY,
                      status=CertStatus.ACTIVE, issued_at=NOW - DAY,
                      pem="-----BEGIN CERTIFICATE-----")


def entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_oid(CRLEntryExtensionOID.CRL_REASON).value.reason
    except x509.ExtensionNotFound:
        return None


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_oid(ExtensionOID.CRL_NUMBER).value.crl_number)


async def test_empty_crl_is_signed_and_recorded(store: Store, ca: CertificateAuthority) -> None:
    crl = await publish_crl(store, ca, validity=DAY, now=NOW + timedelta(microseconds=5))
    assert crl.is_signature_valid(ca.issuing_cert.public_key())
    assert crl.issuer == ca.issuing_cert.subject
    assert list(crl) == []
    assert crl.last_update_utc == NOW  # CRL times have one-second resolution
    assert crl.next_update_utc == NOW + DAY
    assert await store.latest_crl() == (crl_number(crl), NOW, NOW + DAY,
                                        crl.public_bytes(Encoding.DER))


async def test_revoked_and_held_serials_are_listed_with_their_reasons(
        store: Store, ca: CertificateAuthority) -> None:
    await store.add_user("alice")
    for serial in (0x10, 0x11, 0x12, 0x13, 0x14):
        await store.add_certificate(cert(serial))
    lost = NOW - timedelta(hours=3)
    await store.revoke_certificate(0x11, reason="keyCompromise", at=NOW - timedelta(hours=1),
                                   invalidity_date=lost)
    await store.suspend_certificate(0x12, at=NOW - timedelta(hours=2))
    await store.revoke_certificate(0x13, reason=None, at=NOW - timedelta(minutes=5))
    await store.supersede_certificate(0x14, cert(0x15), at=NOW - timedelta(minutes=1))

    crl = await publish_crl(store, ca, validity=DAY, now=NOW)
    assert crl.is_signature_valid(ca.issuing_cert.public_key())
    entries = {e.serial_number: e for e in crl}
    assert set(entries) == {0x11, 0x12, 0x13, 0x14}  # the active 0x10 and 0x15 are not listed
    assert entry_reason(entries[0x11]) is x509.ReasonFlags.key_compromise
    assert entry_reason(entries[0x12]) is x509.ReasonFlags.certificate_hold
    assert entry_reason(entries[0x13]) is None
    assert entry_reason(entries[0x14]) is x509.ReasonFlags.superseded
    assert entries[0x11].revocation_date_utc == NOW - timedelta(hours=1)
    assert entries[0x12].revocation_date_utc == NOW - timedelta(hours=2)
    invalidity = entries[0x11].extensions.get_extension_for_oid(
        CRLEntryExtensionOID.INVALIDITY_DATE).value
    assert invalidity.invalidity_date_utc == lost
    assert crl.get_revoked_certificate_by_serial_number(0x10) is None

    # A resumed certificate leaves the next CRL.
    await store.resume_certificate(0x12)
    later = await publish_crl(store, ca, validity=DAY, now=NOW + timedelta(hours=1))
    assert {e.serial_number for e in later} == {0x11, 0x13, 0x14}


async def test_number_and_this_update_strictly_increase(
        store: Store, ca: CertificateAuthority) -> None:
    first = await publish_crl(store, ca, validity=DAY, now=NOW)
    second = await publish_crl(store, ca, validity=DAY, now=NOW + timedelta(minutes=10))
    assert crl_number(second) > crl_number(first)
    assert second.last_update_utc == NOW + timedelta(minutes=10)
    # Within the same second as the previous one: dated one second later, never the same.
    third = await publish_crl(store, ca, validity=timedelta(hours=2),
                              now=NOW + timedelta(minutes=10, microseconds=999_000))
    assert crl_number(third) > crl_number(second)
    assert third.last_update_utc == NOW + timedelta(minutes=10, seconds=1)
    assert third.next_update_utc == third.last_update_utc + timedelta(hours=2)
    latest = await store.latest_crl()
    assert latest is not None
    assert (latest[0], latest[3]) == (crl_number(third), third.public_bytes(Encoding.DER))


async def test_republish_after_a_revocation_says_what_happened(
        store: Store, ca: CertificateAuthority, config: Config) -> None:
    note = await republish_crl(store, config, lambda: ca, now=NOW)
    assert note == CrlNote(1) and note.published
    assert note.message == "published CRL number 1"

    def locked() -> CertificateAuthority:
        raise PkiError("the CA key is encrypted and no passphrase is available")

    refused = await republish_crl(store, config, locked, now=NOW + timedelta(minutes=1))
    assert not refused.published and refused.number is None
    assert refused.message == (
        "the CRL was not re-signed (the CA key is encrypted and no passphrase is available); "
        "run `certgate crl` or let the server re-sign it")
    latest = await store.latest_crl()
    assert latest is not None and latest[0] == 1  # nothing new was recorded
