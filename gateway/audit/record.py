"""The ``AuditRecord``: what the gateway emits for one event, before it is chained.

Built on the request path, so it is a NamedTuple (cheap to build, immutable) and
carries only what the caller knows; ``fields`` turns it into the chain's fields in
the writer's worker, off the request path. ``type`` says what happened: ``access``
for a request's decision (the default), and later ``login``, ``session.end``,
``gateway.start`` … with their own fields in ``detail``.

Must not hash, number or write anything: ``chain`` and ``writer`` do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from gateway.audit.chain import ChainRow, detail_text, format_at

# Text a client controls (method, host, path, ...) can hold a NUL or, decoded with
# surrogateescape, lone surrogates: PostgreSQL and UTF-8 refuse both, and one record
# that can never be written would hold up every record behind it.
_CLIENT_TEXT = ("reference", "method", "host", "path", "source_ip")


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8 without NUL (escaped as ``\\x00``, ``\\udcff``)."""
    if text.isascii() and "\x00" not in text:
        return text
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe.replace("\x00", "\\x00")


class AuditRecord(NamedTuple):
    """One event. A NamedTuple: immutable, and four times cheaper to build per
    request than a frozen dataclass (whose ``__init__`` goes through
    ``object.__setattr__`` field by field)."""

    reference: str
    at: datetime
    decision: str
    reason: str
    rule: str | None
    app: str | None
    user: str | None
    serial: str | None
    fingerprint: str | None
    method: str | None
    host: str | None
    path: str | None
    source_ip: str | None
    status: int | None
    duration_ms: float | None
    type: str = "access"
    factors: str | None = None  # e.g. "cert" or "cert,totp"
    actor: str | None = None  # who made an admin change (OS or console user)
    detail: dict[str, Any] | None = None  # type-specific fields, never secrets

    def fields(self) -> ChainRow:
        """The chain's fields of this record: every hashed field, node and seq still
        ``None`` (the chain numbers the record)."""
        # In ``CANONICAL_ORDER``, node and seq as placeholders: ``Chain.link`` sets them
        # and encodes the dict as it stands, without sorting it.
        row: ChainRow = {
            "actor": self.actor, "app": self.app, "at": format_at(self.at),
            "decision": self.decision, "detail": detail_text(self.detail),
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "factors": self.factors, "fingerprint": self.fingerprint, "host": self.host,
            "method": self.method, "node": None, "path": self.path, "reason": self.reason,
            "reference": self.reference, "rule": self.rule, "seq": None,
            "serial": self.serial, "source_ip": self.source_ip, "status": self.status,
            "type": self.type, "user": self.user}
        for name in _CLIENT_TEXT:
            value = row[name]
            if value is not None and not (value.isascii() and "\x00" not in value):
                row[name] = clean_text(value)
        return row

    @classmethod
    def event(cls, type: str, at: datetime, *, reference: str, reason: str,
              decision: str = "info", actor: str | None = None, user: str | None = None,
              detail: dict[str, Any] | None = None) -> AuditRecord:
        """A record that is not a request's: ``gateway.start``, ``gateway.stop`` …"""
        return cls(reference=reference, at=at, decision=decision, reason=reason, rule=None,
                   app=None, user=user, serial=None, fingerprint=None, method=None,
                   host=None, path=None, source_ip=None, status=None, duration_ms=None,
                   type=type, actor=actor, detail=detail)
