"""The in-memory certificate index: fingerprint -> who, and whether they may be let in.

Built from a store snapshot at start and kept current by the event follower. On
every request (not only at handshake: keep-alive connections and resumed TLS
sessions outlive certificates) ``resolve`` answers with an ``Identity`` or the
``Reason`` for refusing, using one dict lookup and a few comparisons.

Pure: no I/O, no awaits, no clock reads (the caller passes ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from gateway.store.db import serial_hex
from gateway.store.records import CertRecord, CertStatus, IdentitySnapshot, UserRecord
from pki.crl import reason_from_name
from pki.ocsp import OcspStatus
from policies.model import Reason


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    groups: frozenset[str]
    serial: int
    fingerprint: str
    not_before: datetime
    not_after: datetime
    email: str | None

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)


@dataclass(frozen=True, slots=True)
class _Cert:
    serial: int
    user: str
    status: CertStatus
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class _User:
    enabled: bool
    groups: frozenset[str]
    email: str | None


_STATUS_REASON = {CertStatus.REVOKED: Reason.CERTIFICATE_REVOKED,
                  CertStatus.SUSPENDED: Reason.CERTIFICATE_SUSPENDED}


class CertificateIndex:
    """Fingerprint -> certificate, user name -> user; both plain dicts."""

    def __init__(self) -> None:
        self._certs: dict[str, _Cert] = {}
        self._by_serial: dict[int, str] = {}
        self._users: dict[str, _User] = {}
        self._user_fps: dict[str, set[str]] = {}

    @classmethod
    def from_snapshot(cls, snapshot: IdentitySnapshot) -> CertificateIndex:
        index = cls()
        for user in snapshot.users:
            index._users[user.name] = _User(user.enabled, frozenset(user.groups), user.email)
        for cert in snapshot.certificates:
            index._put(cert)
        return index

    def __len__(self) -> int:
        return len(self._certs)

    def _put(self, cert: CertRecord) -> None:
        fp = cert.fingerprint
        self._certs[fp] = _Cert(cert.serial, cert.user, cert.status, cert.not_before,
                                cert.not_after, cert.revoked_at, cert.reason)
        self._by_serial[cert.serial] = fp
        self._user_fps.setdefault(cert.user, set()).add(fp)

    def resolve(self, fingerprint: str | None, now: datetime) -> Identity | Reason:
        if fingerprint is None:
            return Reason.NO_CERTIFICATE
        cert = self._certs.get(fingerprint)
        if cert is None:
            return Reason.UNKNOWN_CERTIFICATE
        if cert.status is not CertStatus.ACTIVE:
            return _STATUS_REASON[cert.status]
        if now >= cert.not_after:
            return Reason.CERTIFICATE_EXPIRED
        if now < cert.not_before:
            return Reason.CERTIFICATE_NOT_YET_VALID
        user = self._users.get(cert.user)
        if user is None or not user.enabled:
            return Reason.USER_DISABLED
        return Identity(cert.user, user.groups, cert.serial, fingerprint, cert.not_before,
                        cert.not_after, user.email)

    def holder(self, fingerprint: str | None) -> Identity | None:
        """Whose certificate this is, whatever its status: for audit records of refusals.

        Never use this to admit anyone; ``resolve`` is the only gate.
        """
        cert = self._certs.get(fingerprint) if fingerprint is not None else None
        if cert is None or fingerprint is None:
            return None
        user = self._users.get(cert.user)
        return Identity(cert.user, user.groups if user else frozenset(), cert.serial,
                        fingerprint, cert.not_before, cert.not_after,
                        user.email if user else None)

    def ocsp_status(self, serial: int) -> OcspStatus:
        """What OCSP says of a serial: unknown, good, or revoked (on hold when suspended)."""
        fp = self._by_serial.get(serial)
        if fp is None:
            return OcspStatus("unknown")
        cert = self._certs[fp]
        if cert.status is CertStatus.ACTIVE:
            return OcspStatus("good")
        if cert.status is CertStatus.SUSPENDED:
            return OcspStatus("revoked", cert.revoked_at, x509.ReasonFlags.certificate_hold)
        return OcspStatus("revoked", cert.revoked_at,
                          reason_from_name(cert.reason) if cert.reason else None)

    def user_enabled(self, name: str) -> bool:
        user = self._users.get(name)
        return user is not None and user.enabled

    def certificate_status(self, serial: int) -> CertStatus | None:
        """The stored status of a serial as this node knows it; None if unknown."""
        fp = self._by_serial.get(serial)
        return None if fp is None else self._certs[fp].status

    def soonest_expiry(self, now: datetime) -> datetime | None:
        """The earliest ``not_after`` of the certificates valid now (O(n): for metrics)."""
        return min((c.not_after for c in self._certs.values()
                    if c.status is CertStatus.ACTIVE and c.not_before <= now < c.not_after),
                   default=None)

    def apply_user(self, name: str, user: UserRecord | None) -> set[str]:
        """Replace (or remove) one user; returns the fingerprints this affects."""
        if user is None:
            self._users.pop(name, None)
        else:
            self._users[name] = _User(user.enabled, frozenset(user.groups), user.email)
        return set(self._user_fps.get(name, ()))

    def apply_certificate(self, serial: int, cert: CertRecord | None) -> set[str]:
        """Replace (or remove) one certificate; returns its fingerprint."""
        if cert is None:
            fp = self._by_serial.pop(serial, None)
            if fp is None:
                return set()
            old = self._certs.pop(fp)
            self._user_fps.get(old.user, set()).discard(fp)
            return {fp}
        self._put(cert)
        return {cert.fingerprint}
