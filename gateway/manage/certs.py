"""Certificate use-cases: issue, sign a CSR, renew, revoke, suspend, resume.

Issuing writes the PKCS#12 file first and the database record second (removing the
file if the record fails), so no certificate exists that nobody holds. Issue and
renew share that sequence (``_hand_out``). Every revocation, suspension or
resumption publishes a fresh CRL when the CA key is available, and says why not
otherwise (``CrlNote``). Every certificate handed out as a .p12 also gets a one-time
stop code (``gateway.auth.stopcodes``), stored hashed, shown once with the password.

Takes plain values (store, config, a CA loader, ``now``) and returns records.
Never prompts, prints or exits; refuses with ``ManageError`` (or the store's and
the PKI's own one-sentence errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.auth.stopcodes import hash_stop_code, new_stop_code
from gateway.config import Config
from gateway.manage.bundles import (
    BundleRequest,
    bundle_path,
    issue_with_new_key,
    p12_password,
    refuse_existing,
    user_uri_for,
    write_bundle,
)
from gateway.manage.ca import CaLoader
from gateway.manage.crl import CrlNote, republish_crl
from gateway.manage.errors import ManageError
from gateway.store.db import serial_hex
from gateway.store.records import CertRecord, CertStatus, UserRecord
from gateway.store.store import Store
from pki import ca as pki_ca
from pki.keys import fingerprint_sha256

DEFAULT_BUNDLE = BundleRequest()  # frozen: a generated password, the configured profile

# certificateHold is what `suspend` is for; removeFromCRL is not a revocation.
REVOKE_REASONS = ("unspecified", "keyCompromise", "affiliationChanged", "superseded",
                  "cessationOfOperation", "privilegeWithdrawn")


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A new certificate handed out as a .p12 file.

    ``password`` is the file's password when it was generated (show it once), else
    None. ``stop_code`` suspends the certificate from ``/.certgate/lost`` (show it
    once, always). A renewal also names the certificate it ``replaces`` and its
    ``crl`` note.
    """

    record: CertRecord
    path: Path
    password: str | None
    replaces: CertRecord | None = None
    crl: CrlNote | None = None
    stop_code: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Certificates whose status changed (revoked, suspended, resumed) and the CRL note."""

    changed: tuple[CertRecord, ...]
    crl: CrlNote


def certificate_record(cert: x509.Certificate, user: str, key_source: str,
                       now: datetime) -> CertRecord:
    return CertRecord(
        serial=cert.serial_number, user=user, fingerprint=fingerprint_sha256(cert),
        subject=cert.subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, status=CertStatus.ACTIVE, issued_at=now,
        pem=cert.public_bytes(Encoding.PEM).decode(), key_source=key_source)


def csr_from_pem(data: bytes, source: str) -> x509.CertificateSigningRequest:
    """Parse an uploaded CSR; ``source`` names it in the refusal."""
    try:
        return x509.load_pem_x509_csr(data)
    except ValueError:
        raise ManageError(f"{source} is not a PEM certificate signing request") from None


async def _enabled_user(store: Store, name: str) -> UserRecord:
    found = await store.get_user(name)
    if not found.enabled:
        raise ManageError(f"user '{found.name}' is disabled; enable them first")
    return found


async def _hand_out(store: Store, config: Config, load_ca: CaLoader, user: UserRecord, *,
                    days: int | None, bundle: BundleRequest, password: str, now: datetime,
                    record: Callable[[CertRecord], Awaitable[None]]) -> tuple[CertRecord, Path]:
    """Issue a new key and certificate, write the .p12, then ``record`` it in the store."""
    ca = load_ca()
    cert, key = issue_with_new_key(config, ca, user, days=days or config.pki.client_cert_days,
                                   now=now)
    path = bundle_path(bundle.out, user.name, cert.serial_number)
    write_bundle(ca, cert, key, path, password=password,
                 profile=bundle.profile or config.pki.p12_profile)
    new = certificate_record(cert, user.name, "p12", now)
    try:
        await record(new)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return new, path


async def _stop_code(store: Store, record: CertRecord, now: datetime) -> str:
    """A new stop code for ``record``: stored as its argon2id hash, returned in clear once."""
    code = new_stop_code()
    await store.set_stop_code(record.serial, await asyncio.to_thread(hash_stop_code, code),
                              now=now)
    return code


def _prepare(bundle: BundleRequest) -> str:
    password = p12_password(bundle.password)
    if bundle.out is not None:
        refuse_existing(bundle.out)
    return password


async def issue_certificate(store: Store, config: Config, load_ca: CaLoader, *, user: str,
                            days: int | None = None, bundle: BundleRequest = DEFAULT_BUNDLE,
                            now: datetime) -> IssuedCertificate:
    """Issue a certificate and key for ``user`` as a password-protected .p12 file."""
    password = _prepare(bundle)
    found = await _enabled_user(store, user)
    new, path = await _hand_out(store, config, load_ca, found, days=days, bundle=bundle,
                                password=password, now=now, record=store.add_certificate)
    return IssuedCertificate(new, path, None if bundle.password is not None else password,
                             stop_code=await _stop_code(store, new, now))


async def renew_certificate(store: Store, config: Config, load_ca: CaLoader, *, serial: int,
                            days: int | None = None, bundle: BundleRequest = DEFAULT_BUNDLE,
                            now: datetime) -> IssuedCertificate:
    """A new key and certificate for the same user; the old one becomes superseded."""
    password = _prepare(bundle)
    old = await store.get_certificate(serial)
    if old.status is CertStatus.REVOKED:
        raise ManageError(f"certificate {serial_hex(serial)} is revoked; "
                          "issue a new one with `certgate cert issue`")
    found = await _enabled_user(store, old.user)

    async def supersede(new: CertRecord) -> None:
        await store.supersede_certificate(serial, new, at=now)

    new, path = await _hand_out(store, config, load_ca, found, days=days, bundle=bundle,
                                password=password, now=now, record=supersede)
    stop_code = await _stop_code(store, new, now)
    note = await republish_crl(store, config, load_ca, now=now)
    return IssuedCertificate(new, path, None if bundle.password is not None else password,
                             replaces=old, crl=note, stop_code=stop_code)


async def sign_csr(store: Store, config: Config, load_ca: CaLoader, *,
                   csr: x509.CertificateSigningRequest, user: str, days: int | None = None,
                   now: datetime) -> CertRecord:
    """Certify a key that never leaves the user's device; ``record.pem`` is the result."""
    found = await _enabled_user(store, user)
    signed = pki_ca.sign_csr(load_ca(), csr, user=user, email=found.email,
                             days=days or config.pki.client_cert_days, now=now,
                             crl_url=config.pki.crl_url, ocsp_url=config.pki.ocsp_url,
                             uri=user_uri_for(config, user))
    record = certificate_record(signed, user, "csr", now)
    await store.add_certificate(record)
    return record


def _stored_reason(reason: str, invalidity_date: datetime | None) -> str | None:
    if reason not in REVOKE_REASONS:
        raise ManageError(f"'{reason}' is not a revocation reason; use one of "
                          f"{', '.join(REVOKE_REASONS)}")
    if invalidity_date is not None and reason != "keyCompromise":
        raise ManageError("an invalidity date goes with the reason keyCompromise")
    return None if reason == "unspecified" else reason


async def revoke_certificate(store: Store, config: Config, load_ca: CaLoader, *, serial: int,
                             reason: str = "unspecified",
                             invalidity_date: datetime | None = None,
                             now: datetime) -> StatusChange:
    """Revoke one certificate for good, then republish the CRL."""
    stored = _stored_reason(reason, invalidity_date)
    done = await store.revoke_certificate(serial, reason=stored, at=now,
                                          invalidity_date=invalidity_date)
    return StatusChange((done,), await republish_crl(store, config, load_ca, now=now))


async def revoke_user_certificates(store: Store, config: Config, load_ca: CaLoader, *,
                                   user: str, reason: str = "unspecified",
                                   now: datetime) -> StatusChange:
    """Revoke every certificate ``user`` still holds (maybe none), then republish the CRL."""
    stored = _stored_reason(reason, None)
    done = await store.revoke_user_certificates(user, reason=stored, at=now)
    return StatusChange(tuple(done), await republish_crl(store, config, load_ca, now=now))


async def suspend_certificate(store: Store, config: Config, load_ca: CaLoader, *,
                              serial: int, now: datetime) -> StatusChange:
    """Put a certificate on hold (certificateHold in the CRL) until resumed or revoked."""
    changed = await store.suspend_certificate(serial, at=now)
    return StatusChange((changed,), await republish_crl(store, config, load_ca, now=now))


async def resume_certificate(store: Store, config: Config, load_ca: CaLoader, *,
                             serial: int, now: datetime) -> StatusChange:
    """Lift a suspension: the certificate works again."""
    changed = await store.resume_certificate(serial)
    return StatusChange((changed,), await republish_crl(store, config, load_ca, now=now))
