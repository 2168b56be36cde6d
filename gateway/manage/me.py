"""A person's own access: what "My access" reads, and the two changes it lets a person
make to what is theirs (suspend one of their certificates, end their sessions).

Each change goes through the same store path as the admin's (``certs.suspend_certificate``
with its CRL republication, ``Store.end_sessions``), so every node, the CRL and OCSP
see it; what it adds is the check that the certificate or session is the person's own.

Takes plain values and returns records. Never prompts, prints or exits; refuses with
``ManageError``. Must not know about pages or cookies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.config import Config
from gateway.manage.ca import CaLoader
from gateway.manage.certs import StatusChange, suspend_certificate
from gateway.manage.errors import ManageError
from gateway.store.db import serial_hex
from gateway.store.errors import NotFoundError
from gateway.store.records import CertRecord, CertStatus, SessionRecord
from gateway.store.store import Store

RECENT = 50  # audit records on the page


@dataclass(frozen=True, slots=True)
class AccessLine:
    """One audit record about the person, as the page shows it."""

    at: datetime
    type: str
    app: str | None
    host: str | None
    path: str | None
    status: int | None
    decision: str | None
    reason: str | None
    method: str | None = None
    serial: str | None = None  # the certificate a change was about
    actor: str | None = None  # who made a change (the person themselves, or an admin)


@dataclass(frozen=True, slots=True)
class MyAccess:
    """Everything "My access" shows of one user: newest certificate first, newest
    session first, newest record first."""

    user: str
    certificates: tuple[CertRecord, ...]
    sessions: tuple[SessionRecord, ...]
    recent: tuple[AccessLine, ...]


async def my_access(store: Store, user: str, *, now: datetime, idle: timedelta,
                    absolute: timedelta, limit: int = RECENT) -> MyAccess:
    """The user's certificates, sessions still live ``now`` (within ``idle`` and
    ``absolute``) and their last ``limit`` audit records."""
    certs = await store.list_certificates(user=user)
    sessions = [s for s in await store.list_sessions(user)
                if now - s.last_seen <= idle and now - s.created_at <= absolute]
    rows = await store.recent_audit(user, limit=limit)
    return MyAccess(
        user,
        tuple(sorted(certs, key=lambda c: (c.issued_at, c.serial), reverse=True)),
        tuple(sorted(sessions, key=lambda s: (s.created_at, s.id_hash), reverse=True)),
        tuple(AccessLine(**row) for row in rows))


async def own_certificate(store: Store, user: str, serial: int) -> CertRecord:
    """``user``'s certificate ``serial``; one of somebody else's is refused as unknown
    (the answer must not tell whether that serial exists)."""
    try:
        cert = await store.get_certificate(serial)
    except NotFoundError:
        cert = None
    if cert is None or cert.user != user:
        raise ManageError(f"you have no certificate with serial {serial_hex(serial)}")
    return cert


async def suspend_own_certificate(store: Store, config: Config, load_ca: CaLoader, *,
                                  user: str, serial: int, now: datetime) -> StatusChange:
    """Put one of ``user``'s own active certificates on hold, as `cert suspend` does."""
    cert = await own_certificate(store, user, serial)
    if cert.status is not CertStatus.ACTIVE:
        raise ManageError(f"certificate {serial_hex(serial)} is {cert.status.value} already")
    return await suspend_certificate(store, config, load_ca, serial=serial, now=now)


async def end_own_sessions(store: Store, *, user: str, id_hashes: list[str]) -> list[str]:
    """End these sessions of ``user`` (whole id hashes) and those handed off from them,
    as `session kill` does; any that is not theirs (or already gone) is refused."""
    mine = {s.id_hash for s in await store.list_sessions(user)}
    if not id_hashes or any(h not in mine for h in id_hashes):
        raise ManageError("that session has ended already, or is not yours")
    ended: list[str] = []
    for id_hash in id_hashes:
        ended += await store.end_sessions(id_prefix=id_hash)
    return ended
