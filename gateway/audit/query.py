"""``AuditQuery``: what ``certgate audit search`` asks of the audit table.

A plain value: every filter already checked and in the form the table stores
(a serial as uppercase hex, a reference in lowercase, moments as aware UTC).
``gateway.manage.audit_search`` builds it from what a person typed;
``gateway.store.audit`` turns it into one indexed query. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DECISIONS = ("allow", "deny", "error", "info")
MAX_LIMIT = 1_000_000


@dataclass(frozen=True)
class AuditQuery:
    user: str | None = None
    app: str | None = None
    decision: str | None = None
    type: str | None = None
    serial: str | None = None
    reference: str | None = None
    since: datetime | None = None  # at >= since
    until: datetime | None = None  # at < until
    limit: int = 100
    oldest_first: bool = False

    def filters(self) -> dict[str, str]:
        """The equality filters that are set, by column name."""
        pairs = {"user": self.user, "app": self.app, "decision": self.decision,
                 "type": self.type, "serial": self.serial, "reference": self.reference}
        return {name: value for name, value in pairs.items() if value is not None}
