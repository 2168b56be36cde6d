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
    """One change the gateways must apply: ``kind`` "user", "cert", "crl" or "session",
    ``key`` its id (for a session, the hash of its cookie)."""

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
    sessions: tuple[SessionRecord, ...] = ()
    # Event ids below ``last_event_id`` not visible to the snapshot: a transaction
    # that took them may still commit (PostgreSQL hands out ids before commit).
    gaps: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TotpRecord:
    """A user's authenticator: the sealed secret, whether it is confirmed, the last step."""

    user: str
    secret_sealed: str
    state: str  # "pending" (enrolled, not yet confirmed) or "active"
    last_step: int | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One login of one person with one certificate; keyed by the cookie's SHA-256."""

    id_hash: str
    user: str
    fingerprint: str
    created_at: datetime
    last_seen: datetime
    mfa_at: datetime | None  # when the last TOTP or recovery code was accepted
    factors: tuple[str, ...]  # e.g. ("mtls", "pwd", "otp")
    host: str | None = None  # the app host its cookie was set on (None: before 0003)
    origin: str | None = None  # the id_hash of the session it was handed off from

    @property
    def short_id(self) -> str:
        """What people and the CLI see: a prefix of the hash, never the cookie."""
        return self.id_hash[:16]


class HandoffRefusal(StrEnum):
    """Why a hand-off token was not redeemed."""

    UNKNOWN = "unknown"  # never issued, or long gone
    USED = "used"
    EXPIRED = "expired"
    OTHER_CERTIFICATE = "other-certificate"
    OTHER_HOST = "other-host"
    ORIGIN_ENDED = "origin-ended"  # the session it handed off ended meanwhile


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Failed logins of one subject ("user:<name>" or "cert:<sha256>") in its window."""

    subject: str
    count: int
    window_start: datetime
    locked_until: datetime | None
