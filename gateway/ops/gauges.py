"""Sampling the runtime into the metrics' gauges, and the expiry dates they report.

``sample`` reads what the runtime holds (open connections and WebSockets,
sessions, the change feed, the audit writer, background tasks, the policies in
force, expiries) and sets the gauges. It runs when ``/metrics`` is scraped and
every few seconds in each worker (``keep_sampling``), so with several workers
the gauges of the workers that did not answer the scrape are current too.

Certificates are parsed once per ``State`` (a reload brings new ones) and the CRL
once per CRL: a sample reads no file it has read before. Must not change the
runtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from gateway.ops.readiness import crl_next_update, degradations
from gateway.ops.supervise import TaskHealth, keep_running
from pki.ca import ISSUING_CERT, ROOT_CERT

if TYPE_CHECKING:
    from gateway.runtime import Runtime, State

log = logging.getLogger("certgate.metrics")
SAMPLE_INTERVAL = 5.0


def policy_digest(state: State) -> str:
    """A short hash of the apps and their policies as loaded: equal on nodes that agree."""
    apps = [app.model_dump(mode="json") for app in state.config.apps]
    text = json.dumps(apps, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _not_after(path: Path) -> datetime | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None  # `certgate doctor` names a missing or broken file; a gauge cannot


@dataclass
class Expiries:
    """The dates parsed from files and the CRL, kept until the state or CRL changes."""

    _state: object = None
    _files: dict[str, datetime | None] = field(default_factory=dict)
    _crl: bytes | None = None
    _crl_next: datetime | None = None
    digest: str = ""

    def of(self, runtime: Runtime) -> dict[str, datetime | None]:
        state = runtime.state
        if state is not self._state:
            ca_dir = state.config.pki.ca_dir
            self._files = {"server_certificate": _not_after(state.config.tls.cert),
                           "issuing_ca": _not_after(ca_dir / ISSUING_CERT),
                           "root_ca": _not_after(ca_dir / ROOT_CERT)}
            self.digest = policy_digest(state)
            self._state = state
        if runtime.crl_der is not self._crl:
            self._crl = runtime.crl_der
            self._crl_next = crl_next_update(self._crl)
        return {**self._files, "crl": self._crl_next}


def sample(runtime: Runtime, expiries: Expiries) -> None:
    m = runtime.metrics
    now = runtime.clock()
    m.certificates.set(len(runtime.index))
    m.connections.set(runtime.guard.open if runtime.guard is not None else 0)
    m.websockets.set(len(runtime.websockets))
    m.sessions.set(len(runtime.sessions))
    follower = runtime.follower
    m.db_healthy.set(1 if follower is not None and follower.healthy else 0)
    if follower is not None:
        m.change_lag.set(follower.lag())
        m.last_event.set(follower.last_event_id)
    audit = runtime.audit
    m.audit_failing.set(1 if audit.failing else 0)
    m.audit_queue.set(len(audit))
    m.audit_spooled.set(audit.spooled)
    m.observe_tasks(runtime.tasks)
    if (forward := audit.syslog) is not None:
        m.observe_syslog(forward.sent, forward.dropped, forward.queued)
    m.ready.set(1 if runtime.ready else 0)
    m.degraded.set(len(degradations(runtime, now)))
    dates = expiries.of(runtime)
    m.policy_loaded(expiries.digest)
    dates["client_certificate"] = runtime.index.soonest_expiry(now)
    for what, when in dates.items():
        if when is not None:
            m.expiry.labels(what).set((when - now).total_seconds())


async def keep_sampling(runtime: Runtime, expiries: Expiries,
                        interval: float = SAMPLE_INTERVAL) -> None:
    """Sample every ``interval`` seconds, surviving any error (``keep_running``)."""
    async def round_() -> None:
        sample(runtime, expiries)

    health = TaskHealth("metrics sampler", stuck_after=10 * interval + 30,
                        while_failing="the gauges of this process are not updated")
    runtime.tasks.append(health)
    await keep_running(health, round_, interval=interval, max_backoff=60.0,
                       round_timeout=30.0, log=log)
