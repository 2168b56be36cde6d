"""What a running gateway holds: the swappable ``State`` and the long-lived parts around it.

``State`` (router, policies, upstream pools, signer, the TLS server context) is
built whole from a config and swapped in one assignment on reload; an invalid
config never replaces it, nor does one that changes a key read only at start
(``RESTART_KEYS``): that reload is refused naming the keys that need a restart.
``Runtime`` owns what outlives reloads: the store, the certificate index and its
follower, the audit writer, open WebSockets, metrics and the cached CRL.

Every long-lived part opens in ``start`` as one step of a single
``AsyncExitStack`` (see ``gateway.lifecycle``) and ``stop`` closes the stack: in
reverse order, and after a failure half-way through ``start`` only what was
opened. Upstream pools replaced by a reload stay open for requests in flight and
are closed at the latest by ``stop``. Nothing here runs per request except
``record``, which is O(1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from aiohttp import web

from gateway.audit.assembly import (
    build_audit_writer,
    build_retention,
    forward_to_syslog,
    keep_retention,
)
from gateway.audit.events import lifecycle_record, policy_digest, reload_record
from gateway.audit.writer import AuditRecord, AuditWriter
from gateway.auth.activity import SessionActivity, share_interval
from gateway.auth.assertion import AssertionSigner
from gateway.auth.lost import LostDesk
from gateway.auth.secretbox import SecretBox, load_secret_box
from gateway.auth.sessions import SessionIndex, SessionLimits
from gateway.config import Config, TlsConfig, load_config
from gateway.config.console import routed_apps
from gateway.http.exchange import Exchange
from gateway.http.forward import WebSocketRegistry
from gateway.http.guard import Guard
from gateway.http.routing import Router
from gateway.http.tls import ServerTls, build_server_context
from gateway.http.upstream import RetiredPools, UpstreamPool
from gateway.http.wsauth import recheck
from gateway.identity.follower import AppliedChange, EventFollower
from gateway.identity.index import CertificateIndex
from gateway.lifecycle import background
from gateway.ops.exposure import exposure
from gateway.ops.filemodes import check_secret_files, exposed_files
from gateway.ops.gauges import Expiries, keep_sampling
from gateway.ops.mail import Postbox
from gateway.ops.metrics import Metrics
from gateway.ops.renewal import ServerCertRenewer
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.store.notify import ChangeListener, is_postgresql
from gateway.store.store import Store
from policies.model import PolicySet, Reason

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
    tls_context: ssl.SSLContext  # what new handshakes on the public listener use
    audit_query_apps: frozenset[str] = frozenset()  # apps whose records keep the query


def build_state(config: Config) -> State:
    """Everything a reload replaces; raises (naming key and file) on anything wrong."""
    tls_context = build_server_context(config.tls)
    router = Router(routed_apps(config))
    signer = AssertionSigner.from_file(config.assertion.key, issuer=config.assertion.issuer,
                                       ttl=config.assertion.ttl)
    return State(config, router, config.policy_set, UpstreamPool(router), signer, tls_context,
                 frozenset(app.name for app in config.apps if app.audit_query))


# Read once at start (listeners, store, audit writer, logging, the CRL re-signer and
# OCSP responder, the secrets key): a reload cannot change them.
RESTART_KEYS = ("listen", "admin_listen", "pki_listen", "proxy_protocol", "workers", "limits",
                "database_url", "database_listen", "data_dir", "node", "audit.path", "audit.key",
                "audit.checkpoints", "audit.memory_limit", "audit.syslog",
                "audit.syslog_facility", "audit.retention", "log_level", "log_format",
                "auth.secrets_key", "pki.ca_dir", "pki.ca_passphrase_file", "pki.crl_validity",
                "pki.ocsp_signer_cert", "pki.ocsp_signer_key")


def restart_keys(old: Config, new: Config) -> list[str]:
    """The keys whose change needs a restart, in ``RESTART_KEYS`` order."""
    def value(config: Config, key: str) -> object:
        out: object = config
        for part in key.split("."):
            out = getattr(out, part)
        return out

    changed = [key for key in RESTART_KEYS if value(old, key) != value(new, key)]
    if {p for a in old.apps for p in a.ports} != {p for a in new.apps for p in a.ports}:
        changed.append("apps[].ports")  # each extra port is a listening socket
    return changed


def session_limits(config: Config) -> SessionLimits:
    return SessionLimits(idle=config.auth.session_idle, absolute=config.auth.session_absolute)


def load_secrets(config: Config, logger: logging.Logger) -> SecretBox | None:
    """The secrets key if there is one; a missing key only disables the TOTP login."""
    path = config.auth.secrets_key
    if not path.exists():
        if any(app.may_need_mfa for app in config.policy_set.apps.values()):
            logger.warning("no secrets key at %s: requests that need the second factor are "
                           "refused until `certgate init --data-dir %s` adds it", path,
                           config.file.parent)
        return None
    return load_secret_box(path)


# Requests whose reason makes them another kind of event than an access decision.
RECORD_TYPES: dict[str, str] = {
    Reason.LOGIN_SUCCEEDED: "login", Reason.LOGIN_FAILED: "login",
    Reason.LOCKED_OUT: "login", Reason.LOGGED_OUT: "session.end",
    Reason.ENROLLED: "enrollment", Reason.ENROLL_FAILED: "enrollment",
    Reason.HANDOFF_ACCEPTED: "session.start",
    Reason.RESET_COMPLETED: "password.reset", Reason.RESET_FAILED: "password.reset"}


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
    # Login sessions in memory (the database is the truth; the feed keeps them current).
    sessions: SessionIndex = field(default_factory=lambda: SessionIndex(SessionLimits()))
    # The data dir's secrets key (sealed TOTP seeds, CSRF tokens); None until `init`
    # has made one, and then the second-factor login fails closed.
    secrets: SecretBox | None = None
    retired: RetiredPools = field(default_factory=RetiredPools)
    guard: Guard | None = None  # the connection limits, set by the server once listening
    tls: ServerTls | None = None  # the public listener's contexts, set by the server
    # Renews the server certificate and swaps it in; set by the server (gateway.ops.renewal).
    renewer: ServerCertRenewer | None = None
    # The background loops' health (change follower, CRL re-signer, certificate renewer).
    tasks: list[TaskHealth] = field(default_factory=list)
    # Set to have open WebSockets judged again at once (after a reload).
    websocket_check: asyncio.Event = field(default_factory=asyncio.Event)
    expiries: Expiries = field(default_factory=Expiries)  # parsed dates, for the metrics
    _revocations_counted: int = 0
    # "I lost my USB stick": this node's attempt counters and webhook deliveries.
    lost: LostDesk = field(default_factory=LostDesk)
    postbox: Postbox = field(init=False)  # e-mails in flight (gateway.ops.mail)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _stopped: bool = False

    def __post_init__(self) -> None:
        self.postbox = Postbox(self.metrics.mail, self.log)

    @classmethod
    async def start(cls, config: Config, *, poll_interval: float = 0.25,
                    worker: int = 0) -> Runtime:
        """Open the parts in order; if one fails, close the ones before it and re-raise.
        ``worker`` > 0 (a forked worker) gets its own audit chain and spool."""
        check_secret_files(config)  # before any key is read: refuse, naming the chmod
        for warning in exposed_files(config):
            log.warning("%s", warning)
        warnings, notes = exposure(config)
        for warning in warnings:
            log.warning("%s", warning)
        for note in notes:
            log.info("%s", note)
        async with contextlib.AsyncExitStack() as stack:
            state = build_state(config)
            stack.push_async_callback(state.pool.close)  # until the runtime holds it
            store = await Store.open(config.database_url)
            stack.push_async_callback(store.close)
            snapshot = await store.identity_snapshot()
            index = CertificateIndex.from_snapshot(snapshot)
            audit = build_audit_writer(config, store, worker)
            await audit.start()  # where this node's chain stands
            runtime = cls(state, store, index, audit, metrics=Metrics(primary=worker == 0))
            # The pools current and retired at stop time, whatever reloads did meanwhile.
            stack.push_async_callback(runtime._close_pools)
            latest = await store.latest_crl()
            runtime.crl_der = latest[3] if latest else None
            runtime.sessions = SessionIndex(session_limits(config), snapshot.sessions)
            runtime.secrets = load_secrets(config, runtime.log)
            runtime.follower = EventFollower(store, index, after_id=snapshot.last_event_id,
                                             sessions=runtime.sessions,
                                             interval=poll_interval,
                                             on_change=runtime._on_change,
                                             on_applied=runtime._record_applied,
                                             gaps=snapshot.gaps)
            runtime.tasks.append(runtime.follower.health)
            if is_postgresql(config.database_url) and config.database_listen:
                listener = ChangeListener(config.database_url, runtime.follower.wake.set)
                runtime.follower.listening = listener.listening
                runtime.tasks.append(listener.health)
                await stack.enter_async_context(background(listener.run(), "listener"))
            # The writer drains after its task stops: pushed first, so it runs last
            # (then the syslog forward sends what the drain gave it, the last checkpoint).
            if audit.syslog is not None:
                stack.push_async_callback(audit.syslog.close)
            stack.push_async_callback(runtime.audit.close)
            stack.push_async_callback(runtime.lost.close)  # webhooks in flight, before the log
            stack.push_async_callback(runtime.postbox.close)  # and e-mails
            audit.emit(lifecycle_record("gateway.start", config, audit.node, utc_now()))
            await stack.enter_async_context(background(runtime.audit.run(), "audit"))
            if audit.syslog is not None:
                await stack.enter_async_context(background(
                    forward_to_syslog(audit.syslog, runtime.tasks, runtime.log), "audit-syslog"))
            if (retention := build_retention(config, store, audit)) is not None:
                await stack.enter_async_context(background(
                    keep_retention(retention, runtime.tasks, runtime.log), "audit-retention"))
            await stack.enter_async_context(background(runtime.follower.run(), "follower"))
            activity = SessionActivity(store, runtime.sessions, now=runtime.clock(),
                                       interval=share_interval(config.auth.session_idle))
            runtime.tasks.append(activity.health)
            await stack.enter_async_context(background(
                activity.run(lambda: runtime.clock()), "session-activity"))
            await stack.enter_async_context(background(
                runtime._keep_websockets_authorised(), "websocket-reauth"))
            await stack.enter_async_context(background(
                keep_sampling(runtime, runtime.expiries), "metrics-sampler"))
            runtime._stack = stack.pop_all()
        return runtime

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, config: Config, *, poll_interval: float = 0.25, worker: int = 0
                      ) -> AsyncIterator[Runtime]:
        """``start`` on entry, ``stop`` on exit: for one step of a caller's exit stack."""
        runtime = await cls.start(config, poll_interval=poll_interval, worker=worker)
        try:
            yield runtime
        finally:
            await runtime.stop()

    async def _on_change(self, fingerprints: set[str], kinds: set[str]) -> None:
        """Revocations and user changes: drop cached tokens, close affected WebSockets."""
        self.state.signer.forget(fingerprints)
        if kinds & {"cert", "user", "session"}:
            await self.recheck_websockets("a change")
        if "crl" in kinds:
            latest = await self.store.latest_crl()
            self.crl_der = latest[3] if latest else self.crl_der
        self.metrics.certificates.set(len(self.index))
        if self.follower is not None:
            revocations = self.follower.revocations
            self.metrics.revoked(revocations - self._revocations_counted)
            self._revocations_counted = revocations

    def _record_applied(self, change: AppliedChange) -> None:
        """``change.applied``: from when on this node enforced an event that took access away."""
        self.audit.emit(AuditRecord.event(
            "change.applied", change.applied_at, reference=f"event-{change.event_id}",
            reason=change.change, user=change.user,
            detail={"node": self.audit.node, "event": change.event_id, "kind": change.kind,
                    "key": change.key, "created_at": change.created_at.isoformat(),
                    "applied_at": change.applied_at.isoformat(), "lag_ms": change.lag_ms}
        )._replace(serial=change.key if change.kind == "cert" else None))

    async def recheck_websockets(self, why: str) -> int:
        """Close the open WebSockets that would not be admitted now (1008)."""
        closed = await recheck(self.websockets, self.state, self.index, self.sessions,
                               self.clock())
        if closed:
            self.log.info("closed %d WebSocket(s) that lost access after %s", closed, why)
        return closed

    async def _keep_websockets_authorised(self) -> None:
        """Every ``auth.websocket_reauth`` and at once after a reload: recheck."""
        async def round_() -> float:
            await self.recheck_websockets("a periodic check")
            return self.state.config.auth.websocket_reauth.total_seconds()

        async def sleep(delay: float) -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.websocket_check.wait()
            self.websocket_check.clear()

        period = self.state.config.auth.websocket_reauth.total_seconds()
        self.tasks.append(health := TaskHealth("WebSocket re-authoriser",
                                               stuck_after=3 * period + 30))
        await keep_running(health, round_, interval=period, max_backoff=period,
                           round_timeout=60.0, log=self.log, sleep=sleep)

    def secret_box(self) -> SecretBox | None:
        """The secrets key, loaded on first use after start if `totp-enroll` made it."""
        if self.secrets is None:
            self.secrets = load_secrets(self.state.config, self.log)
        return self.secrets

    def reload(self, config_path: Path) -> bool:
        """Build a whole new State from the file; keep the old one if anything is wrong.

        New TLS handshakes use the new state's server context (see ``ServerTls``).
        Applied or refused, a ``policy.reload`` record names the SHA-256 of the file.
        """
        digest = policy_digest(config_path)
        try:
            config = load_config(config_path)
            if keys := restart_keys(self.state.config, config):
                raise ValueError(f"{', '.join(keys)} changed: these keys are read only at "
                                 "start; restart certgate to apply them")
            new_state = build_state(config)
        except Exception as exc:
            self.metrics.reloaded("refused")
            self.log.error("config reload REFUSED, still serving the previous config:\n%s", exc)
            self.audit.emit(reload_record(self.clock(), config_path, digest, None, exc))
            return False
        self.audit.emit(reload_record(self.clock(), config_path, digest, config, None))
        old, self.state = self.state, new_state
        if self.tls is not None:
            self.tls.use(new_state.tls_context, config.tls)
        self.sessions.limits = session_limits(config)
        self.websocket_check.set()  # open WebSockets are judged by the new policy now
        self.metrics.reloaded("applied")
        self.log.warning("config reloaded from %s: %d app(s)", config_path, len(config.apps))
        # Requests in flight keep the old pools until they finish; stop closes them.
        self.retired.retire(old.pool)
        return True

    def use_server_context(self, context: ssl.SSLContext, tls: TlsConfig) -> None:
        """New handshakes get ``context`` (a renewed server certificate); open
        connections keep theirs."""
        self.state = replace(self.state, tls_context=context)
        if self.tls is not None:
            self.tls.use(context, tls)

    def record(self, exchange: Exchange, seconds: float) -> None:
        """One audit record and the metrics for a finished request; O(1), never awaits.
        The query string is kept only for apps with ``audit_query``, else marked
        ``?[redacted]``; a forwarded request adds its bytes and upstream time."""
        identity = exchange.identity
        path = exchange.path
        if exchange.query:
            path += ("?" + exchange.query[:2048]
                     if exchange.app in self.state.audit_query_apps else "?[redacted]")
        self.audit.emit(AuditRecord(
            reference=exchange.reference, at=exchange.at, decision=exchange.verdict,
            reason=exchange.reason, rule=exchange.rule, app=exchange.app,
            user=identity.user if identity else None,
            serial=identity.serial_hex if identity else None, fingerprint=exchange.fingerprint,
            method=exchange.method, host=exchange.host[:255], path=path,
            source_ip=exchange.source_ip, status=exchange.status,
            duration_ms=round(seconds * 1000, 3),
            type=RECORD_TYPES.get(exchange.reason, "access"),
            factors=exchange.factors or ("cert" if identity else None),
            detail=None if exchange.upstream_seconds is None else {
                "bytes_in": exchange.bytes_in, "bytes_out": exchange.bytes_out,
                "upstream_ms": round(exchange.upstream_seconds * 1000, 3)}))
        self.metrics.observe(exchange.app, exchange.verdict, exchange.status, seconds,
                             exchange.reason, exchange.upstream_seconds)

    async def stop(self) -> None:
        """Close everything ``start`` opened, in reverse order; a second call does nothing.
        The ``gateway.stop`` record goes first, so the writer's final drain takes it."""
        if not self._stopped:
            self._stopped = True
            self.audit.emit(lifecycle_record("gateway.stop", self.state.config, self.audit.node,
                                             self.clock()))
        await self._stack.aclose()

    async def _close_pools(self) -> None:
        await self.retired.close()
        await self.state.pool.close()


RUNTIME = web.AppKey("runtime", Runtime)
