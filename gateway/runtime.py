"""What a running gateway holds: the swappable ``State`` and the long-lived parts around it.

``State`` (router, policies, upstream pools, signer) is built whole from a config
and swapped in one assignment on reload; an invalid config never replaces it.
``Runtime`` owns what outlives reloads: the store, the certificate index and its
follower, the audit writer, open WebSockets, metrics and the cached CRL.

Background tasks start in ``start`` and stop in ``stop``; nothing here runs per
request except ``record``, which is O(1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.audit.writer import AuditRecord, AuditWriter
from gateway.auth.assertion import AssertionSigner
from gateway.config import Config, load_config
from gateway.http.exchange import Exchange
from gateway.http.forward import WebSocketRegistry
from gateway.http.routing import Router
from gateway.http.upstream import UpstreamPool
from gateway.identity.follower import EventFollower
from gateway.identity.index import CertificateIndex, Identity
from gateway.ops.metrics import Metrics
from gateway.store.store import Store
from policies.model import PolicySet

log = logging.getLogger("certgate")
# The default clock: aware UTC, and a C-level call (this runs once per request).
utc_now: Callable[[], datetime] = partial(datetime.now, UTC)


@dataclass(frozen=True)
class State:
    config: Config
    router: Router
    policy_set: PolicySet
    pool: UpstreamPool
    signer: AssertionSigner


def build_state(config: Config) -> State:
    router = Router(config.apps)
    signer = AssertionSigner.from_file(config.assertion.key, issuer=config.assertion.issuer,
                                       ttl=config.assertion.ttl)
    return State(config, router, config.policy_set, UpstreamPool(router), signer)


@dataclass
class Runtime:
    state: State
    store: Store
    index: CertificateIndex
    audit: AuditWriter
    metrics: Metrics = field(default_factory=Metrics)
    websockets: WebSocketRegistry = field(default_factory=WebSocketRegistry)
    follower: EventFollower | None = None
    crl_der: bytes | None = None
    ready: bool = False
    log: logging.Logger = log
    # What "now" is for identity checks and decisions; tests move it instead of sleeping.
    clock: Callable[[], datetime] = utc_now
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    async def start(cls, config: Config, *, poll_interval: float = 0.25) -> Runtime:
        state = build_state(config)
        store = await Store.open(config.database_url)
        snapshot = await store.identity_snapshot()
        index = CertificateIndex.from_snapshot(snapshot)
        runtime = cls(state, store, index, AuditWriter(config.audit.path))
        latest = await store.latest_crl()
        runtime.crl_der = latest[3] if latest else None
        runtime.follower = EventFollower(store, index, after_id=snapshot.last_event_id,
                                         interval=poll_interval,
                                         on_change=runtime._on_change)
        runtime._tasks = [asyncio.create_task(runtime.follower.run(), name="follower"),
                          asyncio.create_task(runtime.audit.run(), name="audit")]
        runtime.metrics.certificates.set(len(index))
        return runtime

    async def _on_change(self, fingerprints: set[str], kinds: set[str]) -> None:
        """Revocations and user changes: drop cached tokens, close affected WebSockets."""
        self.state.signer.forget(fingerprints)
        closed = 0
        for fp in fingerprints:
            if not isinstance(self.index.resolve(fp, self.clock()), Identity):
                closed += await self.websockets.close({fp}, code=1008,
                                                      message=b"certificate no longer valid")
        if closed:
            self.log.info("closed %d WebSocket(s) after a revocation", closed)
        if "crl" in kinds:
            latest = await self.store.latest_crl()
            self.crl_der = latest[3] if latest else self.crl_der
        self.metrics.certificates.set(len(self.index))

    def reload(self, config_path: Path) -> bool:
        """Build a whole new State from the file; keep the old one if anything is wrong."""
        try:
            config = load_config(config_path)
            new_state = build_state(config)
        except Exception as exc:
            self.metrics.reloads.labels("refused").inc()
            self.log.error("config reload REFUSED, still serving the previous config:\n%s", exc)
            return False
        old, self.state = self.state, new_state
        self.metrics.reloads.labels("applied").inc()
        self.log.warning("config reloaded from %s: %d app(s)", config_path, len(config.apps))
        # Requests in flight keep the old pools until they finish.
        asyncio.get_running_loop().call_later(300, lambda: asyncio.ensure_future(
            old.pool.close()))
        return True

    def record(self, exchange: Exchange, seconds: float) -> None:
        """One audit record and the metrics for a finished request; O(1), never awaits."""
        identity = exchange.identity
        self.audit.emit(AuditRecord(
            reference=exchange.reference, at=exchange.at, decision=exchange.verdict,
            reason=exchange.reason, rule=exchange.rule, app=exchange.app,
            user=identity.user if identity else None,
            serial=identity.serial_hex if identity else None, fingerprint=exchange.fingerprint,
            method=exchange.method, host=exchange.host[:255], path=exchange.path,
            source_ip=exchange.source_ip, status=exchange.status,
            duration_ms=round(seconds * 1000, 3)))
        self.metrics.observe(exchange.app, exchange.verdict, exchange.status, seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.audit.close()
        await self.state.pool.close()
        await self.store.close()


RUNTIME = web.AppKey("runtime", Runtime)
