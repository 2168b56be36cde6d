"""What "My access" shows, as plain values for the template: dates in words a person
reads, certificate states, the "renew before" notice (the audit records in plain
words: ``gateway.console.recent``).

Pure: no I/O, no clock reads (the caller passes ``now``). Values stay text for the
template to escape; nothing here builds HTML.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from gateway.store.db import serial_hex
from gateway.store.records import CertRecord, CertStatus, SessionRecord

RENEW_NOTICE = timedelta(days=30)


def when(at: datetime | None) -> str:
    return at.strftime("%d %b %Y, %H:%M UTC") if at is not None else ""


def day(at: datetime) -> str:
    return at.strftime("%d %b %Y")


class CertRow(NamedTuple):
    serial: int
    ending: str  # the last 8 hex digits: enough to tell one's own certificates apart
    state: str  # "Active", "Suspended", "Expired", "Revoked", "Replaced"
    issued: str
    expires: str
    in_use: bool
    can_suspend: bool


class SessionRow(NamedTuple):
    id_hash: str
    host: str
    started: str
    last_used: str
    current: bool
    second_factor: str


class RenewNotice(NamedTuple):
    before: str
    days_left: int


def cert_state(cert: CertRecord, now: datetime) -> str:
    if cert.status is CertStatus.REVOKED:
        return "Replaced" if cert.reason == "superseded" else "Revoked"
    if cert.status is CertStatus.SUSPENDED:
        return "Suspended"
    return "Expired" if cert.is_expired(now) else "Active"


def cert_rows(certs: tuple[CertRecord, ...], in_use: str, now: datetime) -> list[CertRow]:
    """``in_use``: the fingerprint of the certificate this browser presented."""
    rows = []
    for cert in certs:
        state = cert_state(cert, now)
        rows.append(CertRow(cert.serial, serial_hex(cert.serial)[-8:], state,
                            day(cert.issued_at), day(cert.not_after),
                            cert.fingerprint == in_use, state == "Active"))
    return rows


def session_rows(sessions: tuple[SessionRecord, ...], current: str, now: datetime
                 ) -> list[SessionRow]:
    """``current``: the id hash of this browser's session."""
    return [SessionRow(s.id_hash, s.host or "(unknown application)", when(s.created_at),
                       "now" if s.id_hash == current else when(s.last_seen),
                       s.id_hash == current, when(s.mfa_at) or "not given")
            for s in sessions]


def renew_notice(not_after: datetime, now: datetime) -> RenewNotice | None:
    """From ``RENEW_NOTICE`` before the certificate in use expires: renew before when."""
    left = not_after - now
    if left > RENEW_NOTICE:
        return None
    return RenewNotice(day(not_after), max(0, left.days))
