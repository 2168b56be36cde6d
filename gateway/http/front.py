"""A listener behind a TCP load balancer: the PROXY v2 header read before TLS starts.

The header comes first on the TCP stream, before the client's TLS hello, so it
cannot go through a transport that reads ahead. ``ProxiedSite`` accepts on its
own socket and, per connection, reads exactly the header's bytes from the raw
socket (16, then the length it announces: never a byte of the hello), then hands
the socket to ``loop.connect_accepted_socket`` with the TLS context, as
``create_server`` would have. The connection's protocol gets the client the
header named, which stands for the socket's peer everywhere after (connection
caps, ``request.remote``, policies' source rules, audit ``source_ip``, logs).

Who must send a header (``ProxyProtocolConfig``): a peer in ``allowed_sources``
must open with a valid v2 header within ``header_timeout``, else it is closed. Any
other peer is served as a direct client, but one that opens with a PROXY header
(v1 or v2: its first bytes, peeked at, tell) is closed: it could claim any address. Each
closure is counted by reason and logged (rate-limited); no request exists yet to
audit. Listeners without ``proxy_protocol`` use ``GuardedSite`` and pay nothing.

Must not decide access: it only says who the client is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from gateway.config.front import ProxyProtocolConfig
from gateway.http.guard import GuardedRunner, GuardedServer, GuardedSite, RateLimitedLog
from gateway.http.proxyproto import (
    PREFIX,
    ProxyHeaderError,
    header_length,
    parse_header,
    starts_like_proxy,
)

log = logging.getLogger("certgate")


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _recv(sock: socket.socket, size: int, flags: int = 0) -> bytes:
    """Up to ``size`` bytes once the socket is readable (``b""``: the peer closed)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return sock.recv(size, flags)
        except (BlockingIOError, InterruptedError):
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(sock)


async def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await _recv(sock, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _FrontServer:
    """What ``BaseSite`` keeps as ``_server``: the listening socket and its accept loop."""

    def __init__(self, sock: socket.socket,
                 admit: Callable[[socket.socket, str], Coroutine[Any, Any, None]]) -> None:
        self.sockets = [sock]
        self._admit = admit
        self._pending: set[asyncio.Task[None]] = set()
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    async def _accept(self) -> None:
        """Accept until cancelled; any failure (EMFILE, say) is logged and accepting goes on."""
        loop = asyncio.get_running_loop()
        listener = self.sockets[0]
        failures = RateLimitedLog(interval=10.0)
        try:
            while True:
                try:
                    conn, addr = await loop.sock_accept(listener)
                    task = loop.create_task(self._admit(conn, str(addr[0])))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures.warning(loop.time(), "accepting a connection on %s failed: %s",
                                     listener.getsockname(), exc)
                    await asyncio.sleep(0.1)  # back off: the cause (no descriptors) may pass
                    continue
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        finally:
            # Here, once the loop has let go of the socket, not in ``close``.
            listener.close()

    def close(self) -> None:
        """Stop accepting; connections still reading their header are closed."""
        self._accepting.cancel()
        for task in self._pending:
            task.cancel()


class ProxiedSite(GuardedSite):
    """A ``GuardedSite`` that reads a PROXY v2 header from the configured balancers."""

    def __init__(self, runner: GuardedRunner, host: str, port: int, *,
                 front: ProxyProtocolConfig, on_refused: Callable[[str], None],
                 ssl_context: ssl.SSLContext | None = None, **kwargs: object) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, **kwargs)
        self._front, self._on_refused = front, on_refused
        self._refusals = RateLimitedLog()

    async def start(self) -> None:
        await web.BaseSite.start(self)
        family = socket.AF_INET6 if ":" in (self._host or "") else socket.AF_INET
        sock = socket.create_server(
            (self._host or "", self._port), family=family, backlog=self._backlog,
            reuse_port=bool(self._reuse_port),
            dualstack_ipv6=self._host == "::" and socket.has_dualstack_ipv6())
        sock.setblocking(False)
        self._server = _FrontServer(sock, self._admit)  # type: ignore[assignment]
        self._bound_port = sock.getsockname()[1]

    async def _admit(self, sock: socket.socket, address: str) -> None:
        """Read the header (or check there is none), then start TLS and serve."""
        try:
            await self._serve(sock, address)
        except asyncio.CancelledError:
            sock.close()
            raise
        except Exception:  # a bug of ours: this connection ends, the listener goes on
            sock.close()
            log.exception("a connection from %s on %s failed", address, self.name)

    async def _serve(self, sock: socket.socket, address: str) -> None:
        try:
            async with asyncio.timeout(self._front.header_timeout.total_seconds()):
                peer = await self._client(sock, address)
        except ProxyHeaderError as exc:
            self._refuse(sock, address, str(exc), exc.reason)
            return
        except TimeoutError:
            what = "no PROXY header" if self._front.allows(address) else "not a byte"
            self._refuse(sock, address, f"{what} within "
                         f"{self._front.header_timeout.total_seconds():g} s "
                         "(proxy_protocol.header_timeout)", "timeout")
            return
        except OSError:
            sock.close()
            return
        server = self._runner.server
        if not isinstance(server, GuardedServer):
            sock.close()
            return
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: server.handler(peer), sock, ssl=self._ssl_context,
                ssl_handshake_timeout=self._handshake_timeout if self._ssl_context else None)
        except (OSError, ssl.SSLError, TimeoutError):  # as create_server: a failed handshake
            sock.close()

    async def _client(self, sock: socket.socket, address: str) -> tuple[str, int] | None:
        """The client the header names; None for a direct client or a LOCAL header."""
        if not self._front.allows(address):
            first = await _recv(sock, PREFIX, socket.MSG_PEEK)  # left for TLS to read
            if starts_like_proxy(first):
                raise ProxyHeaderError(f"{address} is not in proxy_protocol.allowed_sources "
                                       "but sent a PROXY header", "unlisted-source")
            return None  # a direct client; TLS judges the rest
        prefix = await _recv_exactly(sock, PREFIX)
        body = await _recv_exactly(sock, header_length(prefix))
        return parse_header(prefix, body).client  # None (LOCAL): the real peer stands

    def _refuse(self, sock: socket.socket, address: str, why: str, reason: str) -> None:
        with contextlib.suppress(OSError):
            sock.close()
        self._on_refused(reason)
        self._refusals.warning(asyncio.get_running_loop().time(),
                               "closed a connection from %s on %s: %s", address, self.name, why)
