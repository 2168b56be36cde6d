"""Connection-level limits: what a slow, flooding or malformed client can hold or cause.

aiohttp's ``RequestHandler`` is the protocol the event loop drives for each
connection; ``GuardedHandler`` adds, per connection and at O(1) cost:

- a request-head deadline: a head must be complete ``request_head_timeout`` after
  the connection opened or after its first byte arrived on an idle keep-alive
  connection (a trickling client is closed); idle keep-alive connections close
  after ``idle_timeout`` (aiohttp's own ``keepalive_timeout``);
- admission when the connection is made (after the TLS handshake, itself bounded by
  ``handshake_timeout``): connections without a known certificate are capped per
  source address and in total, and every listener together stays under a file
  descriptor budget, so the database and the audit writer keep descriptors;
- malformed requests answered with the gateway's own refusal page, one rate-limited
  WARNING line and an audit record, instead of aiohttp's page and a traceback.

Must not decide access or look anything up but the in-memory ``is_known`` callable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler

from gateway.config import LimitsConfig
from gateway.http.pages import new_reference, refusal
from gateway.http.tls import peer_fingerprint
from policies.model import Reason

log = logging.getLogger("certgate")
SERVER_NAME = "certgate"  # the Server header on every listener: no software version


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class RateLimitedLog:
    """At most one WARNING line per ``interval`` seconds, saying how many were suppressed."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = 0.0
        self._suppressed = 0

    def warning(self, now: float, message: str, *args: Any) -> None:
        if now < self._next:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more suppressed)" if self._suppressed else ""
        self._suppressed, self._next = 0, now + self.interval
        log.warning(message + more, *args)


@dataclass
class Guard:
    """Counters shared by every listener of one process, and the limits they enforce."""

    limits: LimitsConfig
    is_known: Callable[[str | None], bool]
    on_bad_request: Callable[[str, str], None]  # (source address, reference): audit it
    fd_limit: int = field(default_factory=raise_fd_limit)
    open: int = 0
    anonymous: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    timed_out: int = 0
    _refusals: RateLimitedLog = field(default_factory=RateLimitedLog)
    _bad: RateLimitedLog = field(default_factory=RateLimitedLog)

    @property
    def budget(self) -> int:
        # Each client connection may hold one upstream connection too.
        return max((self.fd_limit - self.limits.fd_reserve) // 2, 1)

    def admit(self, transport: Any, source: str, capped: bool, now: float) -> bool | None:
        """Count a new connection in; None when it must be closed at once.

        Returns whether the connection counts as anonymous (no known certificate).
        """
        anonymous = capped and not self.is_known(peer_fingerprint(transport))
        why = None
        if self.open >= self.budget:
            why = "file descriptors are reserved for the database and the audit log"
        elif anonymous and self.anonymous >= self.limits.max_anonymous:
            why = "too many connections without a known certificate"
        elif anonymous and self.per_source.get(source, 0) >= self.limits.max_anonymous_per_source:
            why = "too many connections without a known certificate from this address"
        if why is not None:
            self.refused += 1
            self._refusals.warning(now, "closed a new connection from %s: %s", source, why)
            return None
        self.open += 1
        if anonymous:
            self.anonymous += 1
            self.per_source[source] = self.per_source.get(source, 0) + 1
        return anonymous

    def release(self, source: str, anonymous: bool) -> None:
        self.open -= 1
        if anonymous:
            self.anonymous -= 1
            left = self.per_source.get(source, 1) - 1
            if left:
                self.per_source[source] = left
            else:
                self.per_source.pop(source, None)

    def bad_request(self, source: str, exc: BaseException | None, now: float) -> str:
        reference = new_reference()
        self._bad.warning(now, "refused a malformed request from %s (%s, ref %s)", source,
                          type(exc).__name__ if exc else "unknown", reference)
        self.on_bad_request(source, reference)
        return reference


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol with the guard's limits (see the module docstring)."""

    __slots__ = ("_anonymous", "_capped", "_guard", "_head_count", "_head_timer", "_source")

    def __init__(self, manager: web.Server, *, guard: Guard, capped: bool,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard, self._capped = guard, capped
        self._source = ""
        self._anonymous: bool | None = None  # None: not admitted
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_count = 0

    def _peer_of(self, transport: asyncio.BaseTransport) -> Any:
        return transport.get_extra_info("peername")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = self._peer_of(transport)
        self._source = str(peer[0]) if peer else ""
        self._anonymous = self._guard.admit(transport, self._source, self._capped,
                                            self._loop.time())
        if self._anonymous is None:
            cast(asyncio.Transport, transport).abort()
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._anonymous is not None:
            self._guard.release(self._source, self._anonymous)
            self._anonymous = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        starts_head = (self._head_timer is None and not self._request_in_progress
                       and not self._messages)
        count = self._request_count
        super().data_received(data)
        if self._head_timer is not None:
            if self._request_count != self._head_count:
                self._head_timer.cancel()
                self._head_timer = None
        elif starts_head and self._request_count == count and self.transport is not None:
            # A head began on an idle connection but is not complete yet: its deadline
            # starts now. (A head that arrives whole, the usual case, arms no timer.)
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._head_count = self._request_count
        self._head_timer = self._loop.call_later(
            self._guard.limits.request_head_timeout.total_seconds(), self._head_due)

    def _head_due(self) -> None:
        self._head_timer = None
        if self._request_count == self._head_count and self.transport is not None:
            self._guard.timed_out += 1
            self.force_close()

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:  # a bug of ours: aiohttp logs it with its traceback
            response = super().handle_error(request, status, exc, message)
        else:
            if request.writer.output_size > 0:
                raise ConnectionError("a response was sent already")
            reference = self._guard.bad_request(self._source, exc, self._loop.time())
            response = refusal(cast(web.Request, request), status=400,
                               reason=Reason.BAD_REQUEST, reference=reference)
            response.force_close()
        response.headers["Server"] = SERVER_NAME
        return response


class ProxiedHandler(GuardedHandler):
    """A connection whose client a PROXY protocol header named (``gateway.http.front``).

    That client stands for the socket's peer everywhere: the anonymous caps,
    ``request.remote`` (so policies' source rules, the audit trail, X-Forwarded-For)
    and the logs. A subclass, so connections without a header pay nothing for it.
    """

    __slots__ = ("_peer",)

    def __init__(self, manager: web.Server, *, peer: tuple[str, int], **kwargs: Any) -> None:
        self._peer = peer
        super().__init__(manager, **kwargs)

    @property
    def peername(self) -> tuple[str, int]:
        return self._peer

    def _peer_of(self, transport: asyncio.BaseTransport) -> Any:
        return self._peer


class GuardedServer(web.Server):
    def __init__(self, *args: Any, guard: Guard, capped: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard, self._capped = guard, capped

    def __call__(self) -> RequestHandler:
        return self.handler()

    def handler(self, peer: tuple[str, int] | None = None) -> RequestHandler:
        """A connection's protocol; ``peer``: the client a PROXY header named."""
        if peer is None:
            return GuardedHandler(self, loop=self._loop, guard=self._guard,
                                  capped=self._capped, **self._kwargs)
        return ProxiedHandler(self, loop=self._loop, guard=self._guard, capped=self._capped,
                              peer=peer, **self._kwargs)


async def _name_server(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp has filled in its default by now; an upstream's own Server header stays.
    if response.headers.get("Server") == SERVER_SOFTWARE:
        response.headers["Server"] = SERVER_NAME


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are ``GuardedHandler`` s sharing one ``Guard``.

    ``capped``: whether connections without a known certificate count against the
    anonymous caps (the admin listener, loopback by default, is not capped).
    """

    def __init__(self, app: web.Application, guard: Guard, *, capped: bool,
                 **kwargs: Any) -> None:
        app.on_response_prepare.append(_name_server)
        super().__init__(app, keepalive_timeout=guard.limits.idle_timeout.total_seconds(),
                         **kwargs)
        self._guard, self._capped = guard, capped

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                              loop=asyncio.get_running_loop(), guard=self._guard,
                              capped=self._capped, **plain._kwargs)


class GuardedSite(web.TCPSite):
    """A ``TCPSite`` whose TLS handshakes must finish within ``handshake_timeout``."""

    def __init__(self, runner: GuardedRunner, host: str, port: int, *,
                 ssl_context: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, **kwargs)
        self._handshake_timeout = runner._guard.limits.handshake_timeout.total_seconds()

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl_context else None)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
