"""Table definitions (SQLAlchemy Core). Alembic revisions create them; the store queries them.

Serials are 128-bit, so they are stored as uppercase hex text. Times are stored as
UTC and always returned timezone-aware. No I/O here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("email", String(254)),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("password_hash", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

groups = Table(
    "groups", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
)

user_groups = Table(
    "user_groups", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

certificates = Table(
    "certificates", metadata,
    Column("serial", String(40), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("reason", String(32)),
    Column("invalidity_date", UTCDateTime),
    Column("replaced_by", String(40)),
    Column("key_source", String(8), nullable=False),
    Column("pem", Text, nullable=False),
)

crl_numbers = Table(
    "crl_numbers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime, nullable=False),
)

crls = Table(
    "crls", metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("this_update", UTCDateTime, nullable=False),
    Column("next_update", UTCDateTime, nullable=False),
    Column("der", LargeBinary, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# --- the second factor (migration 0002) ----------------------------------------------

totp = Table(
    "totp", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret", Text, nullable=False),  # sealed with the data dir's secrets key
    Column("state", String(8), nullable=False),  # "pending" until confirmed, then "active"
    # The last accepted time step: a code of this step or an older one is never
    # accepted again, on any node (a conditional UPDATE, not a read).
    Column("last_step", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
)

recovery_codes = Table(
    "recovery_codes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("code_hash", Text, nullable=False),  # argon2id
    Column("used_at", UTCDateTime),
)

login_failures = Table(
    "login_failures", metadata,
    Column("subject", String(80), primary_key=True),  # "user:<name>" or "cert:<sha256>"
    Column("count", Integer, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

sessions = Table(
    "sessions", metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the cookie, never the cookie
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("mfa_at", UTCDateTime),
    Column("factors", String(64), nullable=False),
    # Migration 0003: the host the cookie was set on, and the session this one was
    # handed off from (one sign-in covers every app host; see ``handoffs``).
    Column("host", String(253)),
    Column("origin", String(64), index=True),
)

# --- one sign-in on every app host (migration 0003) -----------------------------------

handoffs = Table(
    "handoffs", metadata,
    # SHA-256 of the one-time token: the token itself is never stored.
    Column("token_hash", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # the certificate it is bound to
    Column("target_host", String(253), nullable=False),  # the only host that redeems it
    Column("origin", String(64), nullable=False),  # the session it hands off
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime),  # set once, by a conditional UPDATE
)

# --- the audit trail (migrations 0004, 0005) -------------------------------------------------

# One row per event, hash-chained per node (see gateway.audit.chain for the fields and
# the canonical encoding). Text columns are unbounded: a record that can never be
# written (a value one character too long) would hold up every record behind it.
audit_records = Table(
    "audit_records", metadata,
    Column("node", String(64), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("reference", Text, index=True),
    Column("user", Text),
    Column("serial", String(40)),
    Column("fingerprint", String(64)),
    Column("source_ip", Text),
    Column("app", Text),
    Column("method", Text),
    Column("host", Text),
    Column("path", Text),
    Column("status", Integer),
    Column("decision", String(16)),
    Column("reason", Text),
    Column("rule", Text),
    Column("factors", Text),
    Column("actor", Text),
    Column("duration_ms", Float),
    Column("detail", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # What ``audit search`` filters on, each newest first (migration 0005).
    Index("ix_audit_records_user_at", "user", "at"),
    Index("ix_audit_records_app_at", "app", "at"),
    Index("ix_audit_records_serial_at", "serial", "at"),
    Index("ix_audit_records_type_at", "type", "at"),
    Index("ix_audit_records_decision_at", "decision", "at"),
)

# A node's signed statement "my chain had this head at this time", every N records or
# M seconds and at shutdown; also appended to a file outside the database.
audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("signature", Text, nullable=False),
    Index("ix_audit_checkpoints_node_seq", "node", "seq"),
)

# --- "I lost my USB stick" (migration 0006) -------------------------------------------

# One stop code per certificate, shown once at issue: only its argon2id hash is kept.
# Using it suspends the certificate; ``used_at`` is set once, by a conditional UPDATE.
stop_codes = Table(
    "stop_codes", metadata,
    Column("serial", String(40), ForeignKey("certificates.serial", ondelete="CASCADE"),
           primary_key=True),
    Column("code_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# --- the console's one-time download links (migration 0007) ------------------------------

# A new person's .p12, fetched once through a link the admin passes on. Only the
# SHA-256 of the link's token is kept; the .p12 (encrypted with the password the
# admin gives by phone) is cleared when it is fetched, and swept once expired.
download_links = Table(
    "download_links", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("serial", String(40), ForeignKey("certificates.serial", ondelete="CASCADE"),
           nullable=False),
    Column("holder", String(128), nullable=False),  # the user name, for the greeting
    Column("p12", LargeBinary),  # None once fetched or expired
    Column("created_by", String(128), nullable=False),  # the console user who issued it
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime),  # set once, by a conditional UPDATE
)

# --- password resets (migration 0008) -------------------------------------------------

# One open "choose your password" code per user, set by an admin. Only its argon2id
# hash is kept; it is spent by a conditional UPDATE, so it works once on any node.
password_resets = Table(
    "password_resets", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("code_hash", Text, nullable=False),
    Column("created_by", String(128), nullable=False),  # the admin (OS user or console:…)
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)
