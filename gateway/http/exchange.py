"""What one request did, as the audit record and the metrics see it.

The request story creates one ``Exchange`` per request, fills it in as it goes
and hands it to ``Runtime.record`` from its one ``finally``. Until the story says
otherwise an exchange reads "error / internal-error / 500", so a request that
fails half-way is still recorded, and recorded as a failure.

Plain data: no I/O, no clock reads (the story passes ``at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.identity.index import Identity
from policies.model import Reason


class Verdict(StrEnum):
    """What was done with a request: the ``decision`` of audit records and metrics."""

    ALLOW = "allow"
    DENY = "deny"
    ERROR = "error"


@dataclass(slots=True)
class Exchange:
    """One request, filled in as the story goes (mutable: built once, never copied)."""

    reference: str
    at: datetime
    method: str
    host: str  # the Host header as the client sent it
    source_ip: str
    path: str  # the raw path until it is normalised, then the normal form
    fingerprint: str | None
    identity: Identity | None = None
    app: str | None = None
    rule: str | None = None
    status: int = 500
    verdict: Verdict = Verdict.ERROR
    reason: Reason = Reason.INTERNAL_ERROR
    upstream_seconds: float | None = None  # an HTTP forward: sent upstream to response end
