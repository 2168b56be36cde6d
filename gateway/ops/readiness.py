"""Why a running node is degraded: each reason with since when, for ``/readyz`` and the metrics.

A degraded node still serves (from memory), so ``/readyz`` stays 200 and says
``degraded`` with this list: the database unreachable, the change feed behind,
the audit log failing (records kept in memory and the spool), the CRL not
re-signed when due, a background task failing, stuck or dead.

Reads the runtime; must not change it and must not do I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# The change feed reads every quarter second (every 2 s as catch-up behind LISTEN):
# no read for this long means this node may be acting on stale revocations.
CHANGE_FEED_BEHIND = 10.0
# The re-signer renews the CRL at half its validity; a CRL within this share of its
# validity from nextUpdate was not renewed when due.
CRL_MARGIN = 0.25


def crl_next_update(der: bytes | None) -> datetime | None:
    if der is None:
        return None
    try:
        return x509.load_der_x509_crl(der).next_update_utc
    except ValueError:
        return None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def degradations(runtime: Runtime, now: datetime | None = None) -> list[dict[str, object]]:
    """What keeps this node from being fully well, each with its reason and since when."""
    now = runtime.clock() if now is None else now
    follower = runtime.follower
    audit = runtime.audit
    degraded: list[dict[str, object]] = []
    if audit.failing_since is not None:
        degraded.append({"component": "audit", "reason": audit.last_error,
                         "since": audit.failing_since.isoformat(),
                         "spooled_records": audit.spooled,
                         "refusing_requests": runtime.state.config.audit.on_failure == "deny"})
    if follower is not None and not follower.healthy:
        degraded.append({"component": "database",
                         "reason": "the change feed cannot reach the database; serving "
                                   "from memory",
                         "since": _iso(follower.health.failing_since)})
    elif follower is not None and (lag := follower.lag()) > CHANGE_FEED_BEHIND:
        degraded.append({"component": "change feed",
                         "reason": f"changes made elsewhere were last read {lag:.0f} s ago",
                         "since": (now - timedelta(seconds=lag)).isoformat()})
    next_update = crl_next_update(runtime.crl_der)
    if next_update is not None:
        margin = runtime.state.config.pki.crl_validity * CRL_MARGIN
        if now >= next_update - margin:
            expired = now >= next_update
            degraded.append({
                "component": "crl",
                "reason": ("the CRL expired at " if expired else "the CRL expires at ")
                + f"{next_update.isoformat()} and has not been re-signed; relying parties "
                  "that check it will refuse every certificate. Run `certgate crl` (the "
                  "re-signer needs the CA passphrase)",
                "since": (next_update - margin).isoformat()})
    for task in runtime.tasks:
        problem = task.problem()
        if problem is not None:
            degraded.append({"component": task.name, "reason": problem,
                             "since": _iso(task.failing_since),
                             "meaning": task.while_failing or None})
    if (forward := audit.syslog) is not None and (forward.queued or forward.dropped):
        for entry in degraded:
            if entry["component"] == "audit syslog forward":
                entry.update(queued_messages=forward.queued, dropped_messages=forward.dropped)
    return degraded
