"""Listeners and process lifecycle: ``serve`` runs the gateway until told to stop.

One process (or N workers sharing ports through SO_REUSEPORT, forked and watched
by ``ops.workers``) each runs: the
public TLS listener plus every app's extra ports, the admin listener
(/healthz, /readyz, /metrics) and the PKI listener (CRL, OCSP); the public and PKI
listeners named in ``proxy_protocol`` read a PROXY v2 header first (``http.front``).
SIGHUP reloads the config, TLS certificate and version floor included (an invalid
one, or one changing a key read only at start, is refused and the old one keeps
serving); SIGTERM or
SIGINT stops accepting and drains requests in flight before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime

from aiohttp import web
from cryptography import x509

from gateway.audit.record import AuditRecord
from gateway.config import Config, HostPort
from gateway.config.front import ProxyProtocolConfig
from gateway.http.app import create_public_app
from gateway.http.exchange import Exchange, Verdict
from gateway.http.front import ProxiedSite
from gateway.http.guard import Guard, GuardedRunner, GuardedSite
from gateway.http.pkiweb import create_pki_app
from gateway.http.tls import ServerTls, build_server_context
from gateway.identity.index import Identity
from gateway.lifecycle import background
from gateway.manage.ca import ca_passphrase
from gateway.manage.crl import publish_crl
from gateway.ops import instance, multiproc
from gateway.ops.health import create_admin_app
from gateway.ops.renewal import ServerCertRenewer
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.ops.workers import supervise
from gateway.runtime import Runtime
from pki.ca import load_ca
from pki.keys import PkiError
from policies.model import Reason

log = logging.getLogger("certgate")
DRAIN_SECONDS = 30.0


def _addresses(runner: web.AppRunner) -> list[str]:
    out = []
    for addr in runner.addresses:
        host, port = addr[0], addr[1]
        out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return out


async def _keep_crl_fresh(runtime: Runtime, config: Config) -> None:
    """Re-sign the CRL at half its validity, so an expired CRL never exists."""
    try:
        passphrase = ca_passphrase(config, os.environ)
        ca = load_ca(config.pki.ca_dir, passphrase)
    except PkiError as exc:
        der = runtime.crl_der
        until = x509.load_der_x509_crl(der).next_update_utc if der else None
        # ``exc`` already says what to do (set CERTGATE_CA_PASSPHRASE or ...).
        log.warning("the CRL cannot be re-signed automatically: %s. The current CRL is "
                    "valid until %s.", exc, until)
        return

    async def round_() -> float:
        latest = await runtime.store.latest_crl()
        now = datetime.now(UTC)
        if latest is None or now >= latest[1] + (latest[2] - latest[1]) / 2:
            crl = await publish_crl(runtime.store, ca, validity=config.pki.crl_validity,
                                    now=now)
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            log.info("re-signed the CRL (number %s)", number)
            runtime.audit.emit(AuditRecord.event(
                "crl.sign", now, reference=secrets.token_hex(6), reason="re-signed",
                detail={"crl_number": number, "by": "re-signer",
                        "next_update": crl.next_update_utc.isoformat()
                        if crl.next_update_utc else None}))
            return 1.0
        wait = (latest[1] + (latest[2] - latest[1]) / 2 - now).total_seconds()
        return min(max(wait, 1.0), 3600.0)

    # A round is due at least hourly; failures retry every 30 s at most.
    health = TaskHealth("CRL re-signer", stuck_after=2 * 3600.0,
                        while_failing="the current CRL stays served until it expires")
    runtime.tasks.append(health)
    await keep_running(health, round_, interval=1.0, max_backoff=30.0, round_timeout=120.0,
                       log=log)


def _renewer(runtime: Runtime, primary: bool) -> ServerCertRenewer:
    """Every process serves the certificate on disk; only the primary renews it."""
    return ServerCertRenewer(config=lambda: runtime.state.config,
                             use=runtime.use_server_context, emit=runtime.audit.emit,
                             clock=lambda: runtime.clock(), primary=primary, log=log)


def _guard(runtime: Runtime, config: Config) -> Guard:
    """The connection limits of this process; malformed requests are audited."""
    def is_known(fingerprint: str | None) -> bool:
        return fingerprint is not None and isinstance(
            runtime.index.resolve(fingerprint, runtime.clock()), Identity)

    def audit_bad_request(source: str, reference: str) -> None:
        out = Exchange(reference, runtime.clock(), "", "", source, "", None, status=400,
                       verdict=Verdict.DENY, reason=Reason.BAD_REQUEST)
        runtime.record(out, 0.0)

    return Guard(config.limits, is_known, audit_bad_request)


def _front(runtime: Runtime, config: Config
           ) -> dict[str, tuple[ProxyProtocolConfig, Callable[[str], None]]]:
    """The listeners behind a PROXY v2 balancer, each with the config and a refusal counter."""
    section = config.proxy_protocol
    if section is None:
        return {}

    def refused(reason: str) -> None:
        runtime.metrics.proxy_refused.labels(reason).inc()

    return {name: (section, refused) for name in section.listeners}


@contextlib.asynccontextmanager
async def _listening(app: web.Application, binds: list[tuple[str, int]], guard: Guard, *,
                     ssl_context: ssl.SSLContext | None = None, reuse_port: bool = False,
                     backlog: int = 128, shutdown_timeout: float = 60.0, capped: bool = True,
                     front: tuple[ProxyProtocolConfig, Callable[[str], None]] | None = None
                     ) -> AsyncIterator[web.AppRunner]:
    """One runner with a site per address; cleanup stops accepting, then drains.

    ``front``: these addresses sit behind a balancer sending PROXY v2 headers (the
    config section, and what counts a connection closed for its header)."""
    runner = GuardedRunner(app, guard, capped=capped, access_log=None,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        for host, port in binds:
            if front is None:
                await GuardedSite(runner, host, port, ssl_context=ssl_context,
                                  reuse_port=reuse_port, backlog=backlog).start()
            else:
                await ProxiedSite(runner, host, port, front=front[0], on_refused=front[1],
                                  ssl_context=ssl_context, reuse_port=reuse_port,
                                  backlog=backlog).start()
        yield runner
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def _signals(stop: asyncio.Event, runtime: Runtime, config: Config) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, runtime.reload, config.file)
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _ready(runtime: Runtime) -> Iterator[None]:
    """/readyz says ready while open; it says not ready before the drain begins."""
    runtime.ready = True
    try:
        yield
    finally:
        runtime.ready = False


async def run_server(config: Config, *, listen: HostPort | None = None,
                     admin_listen: HostPort | None = None, reuse_port: bool = False,
                     primary: bool = True, worker: int = 0,
                     on_ready: Callable[[Runtime, dict[str, list[str]]], Awaitable[None]]
                     | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT), then drain and close everything.

    Each part is one step of a single exit stack: the runtime, the admin and PKI
    listeners, the public listener (last to open, first to close, so it drains
    while the admin listener still answers /readyz), the CRL re-signer, the server
    certificate renewer, the signal handlers. A step that fails closes the steps
    before it and the error propagates.
    """
    listen = listen or config.listen
    admin_listen = admin_listen or config.admin_listen
    stop = stop or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        runtime = await stack.enter_async_context(Runtime.running(config, worker=worker))
        guard = runtime.guard = _guard(runtime, config)
        front = _front(runtime, config)
        # The listener's own context; each handshake switches to the current state's.
        tls = runtime.tls = ServerTls(build_server_context(config.tls),
                                      runtime.state.tls_context)
        admin = await stack.enter_async_context(_listening(
            create_admin_app(runtime), [(admin_listen.host, admin_listen.port)], guard,
            reuse_port=reuse_port, capped=False))
        addresses = {"public": [], "admin": _addresses(admin), "pki": []}
        if config.pki_listen is not None:
            pki = await stack.enter_async_context(_listening(
                create_pki_app(runtime), [(config.pki_listen.host, config.pki_listen.port)],
                guard, reuse_port=reuse_port, front=front.get("pki")))
            addresses["pki"] = _addresses(pki)
        ports = [listen.port, *sorted(runtime.state.router.extra_ports)]
        public = await stack.enter_async_context(_listening(
            create_public_app(runtime), [(listen.host, port) for port in ports], guard,
            ssl_context=tls.listener, reuse_port=reuse_port, backlog=1024,
            shutdown_timeout=DRAIN_SECONDS, front=front.get("public")))
        addresses["public"] = _addresses(public)
        if primary:
            await stack.enter_async_context(background(_keep_crl_fresh(runtime, config),
                                                       "crl-resigner"))
        renewer = runtime.renewer = _renewer(runtime, primary)
        runtime.tasks.append(renewer.health)
        await stack.enter_async_context(background(renewer.run(), "server-cert-renewer"))
        stack.enter_context(_signals(stop, runtime, config))
        stack.enter_context(_ready(runtime))
        if on_ready is None:
            _say_ready(f"certgate ready: public https://{', '.join(addresses['public'])} "
                       f"admin http://{', '.join(addresses['admin'])}"
                       + (f" pki http://{', '.join(addresses['pki'])}"
                          if addresses["pki"] else ""))
        else:  # the caller announces (the demo prints only addresses that work)
            await on_ready(runtime, addresses)
        await stop.wait()
        log.warning("stopping: draining requests in flight (up to %.0f s)", DRAIN_SECONDS)


def _run_loop(main: Callable[[], Awaitable[None]]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        asyncio.run(main())  # type: ignore[arg-type]
        return
    uvloop.run(main())  # type: ignore[arg-type]


def _say_ready(line: str) -> None:
    """The readiness line on standard output as ONE write: forked workers share the
    pipe, and ``print`` writes the text and its newline separately, so two workers
    starting together interleaved into one garbled line (a write under PIPE_BUF is
    never split)."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (line + "\n").encode())


def serve(config: Config, *, listen: HostPort | None = None,
          admin_listen: HostPort | None = None, workers: int | None = None) -> None:
    """Run the gateway in this process, or supervise ``workers`` forked processes.

    Holds the data dir first (``DataDirInUse`` when another ``serve`` runs on it);
    with workers, ``WorkerFailed`` when one ended on its own (the others stopped)."""
    with instance.hold_data_dir(config.data_dir):
        _serve(config, listen, admin_listen, workers or config.workers)


def _serve(config: Config, listen: HostPort | None, admin_listen: HostPort | None,
           count: int) -> None:
    if count <= 1:
        _run_loop(lambda: run_server(config, listen=listen, admin_listen=admin_listen))
        return
    bind = listen or config.listen
    if bind.port == 0:
        raise ValueError("several workers need a fixed port to share (not port 0)")
    multiproc.prepare(config.data_dir)  # before the fork: the workers' metrics add up

    def work(index: int) -> None:
        _run_loop(lambda: run_server(config, listen=listen, admin_listen=admin_listen,
                                     reuse_port=True, primary=index == 0, worker=index))

    supervise(count, work)
