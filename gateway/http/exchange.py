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
from functools import lru_cache

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
    query: str = ""  # as sent; the record keeps it only for apps with audit_query
    factors: str | None = None  # "cert,totp" …; None: the certificate alone, if known
    # An HTTP forward (None: not forwarded), measured once in gateway.http.forward:
    upstream_seconds: float | None = None  # sent upstream until its head arrived or it failed
    bytes_in: int = 0  # request body bytes sent upstream
    bytes_out: int = 0  # response body bytes sent to the client


# Session factors as the audit record names them; the password goes with every second
# factor (the sign-in asks for both), so "cert,totp" means certificate + password + code.
_FACTOR_NAMES = {"mtls": "cert", "otp": "totp", "recovery": "recovery"}


@lru_cache(maxsize=64)
def factors_label(factors: tuple[str, ...]) -> str:
    """``("mtls", "pwd", "otp")`` -> ``"cert,totp"`` (cached: sessions share a few forms)."""
    return ",".join(_FACTOR_NAMES[f] for f in factors if f in _FACTOR_NAMES) or "cert"
