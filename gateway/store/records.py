"""Plain records the store returns; no SQLAlchemy types leak out of the store.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CertStatus(StrEnum):
    """Stored status; "expired" is derived from ``not_after``, never stored."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    email: str | None
    enabled: bool
    groups: tuple[str, ...]
    password_hash: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CertRecord:
    serial: int
    user: str
    fingerprint: str
    subject: str
    not_before: datetime
    not_after: datetime
    status: CertStatus
    issued_at: datetime
    pem: str
    revoked_at: datetime | None = None
    reason: str | None = None
    invalidity_date: datetime | None = None
    replaced_by: int | None = None
    key_source: str = "p12"

    def is_expired(self, now: datetime) -> bool:
        return now >= self.not_after


@dataclass(frozen=True, slots=True)
class Event:
    """One change the gateways must apply: ``kind`` "user" or "cert", ``key`` its id."""

    id: int
    kind: str
    key: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdentitySnapshot:
    """Everything the gateway keeps in memory, as of ``last_event_id``."""

    users: tuple[UserRecord, ...]
    certificates: tuple[CertRecord, ...]
    last_event_id: int
