"""Forwarding an admitted request to its upstream: streamed HTTP and WebSocket pumping.

Bodies stream both ways in chunks (never read whole), so a 2 GiB backup restore
costs the gateway no more memory than a page view. Failures before the response
starts become ``ForwardError`` (the story renders a page for it); failures after
it started abort the client connection, because a status can no longer be sent.

Must not decide access: the request story calls this only after the policy allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from gateway.http.exchange import Exchange
from gateway.http.headers import OriginRewriter, client_response_headers, upstream_request_headers
from gateway.http.routing import AppTarget, RouteTarget
from gateway.http.upstream import UpstreamPool
from policies.model import Reason

log = logging.getLogger("certgate.forward")
CHUNK = 64 * 1024
# Headers aiohttp's WebSocket client writes itself; the client's own would clash.
_WS_OWN = ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
           "sec-websocket-protocol", "sec-websocket-accept")


class ForwardError(Exception):
    """The upstream could not be asked or did not answer; ``detail`` is for logs only."""

    def __init__(self, status: int, reason: Reason, detail: str, limit: int | None = None):
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.limit = limit


class _TooLarge(Exception):
    pass


class UpstreamCall(NamedTuple):
    """One admitted request as forwarding sees it: where it goes and what it adds."""

    app: AppTarget
    route: RouteTarget
    path_qs: str  # the normalised path the policy judged, plus the query as sent
    identity_headers: Mapping[str, str]  # set by the gateway, never by the client
    public_host: str
    public_port: int
    client_ip: str


def is_websocket_upgrade(request: web.Request) -> bool:
    return (request.method == "GET"
            and request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def _rewriter(app: AppTarget, public_host: str, public_port: int) -> OriginRewriter:
    """One rewriter per (public host, port) of an app, built on first use (it compiles a
    regex); cached on the AppTarget, so a reload starts with fresh ones."""
    key = (public_host, public_port)
    rewriter = app.rewriters.get(key)
    if rewriter is None:
        if len(app.rewriters) > 64:  # the Host is already checked against the app's host
            app.rewriters.clear()
        origin = f"https://{public_host}" + ("" if public_port == 443 else f":{public_port}")
        hosts = {r.upstream.host for r in app.routes if r.upstream.host}
        rewriter = app.rewriters[key] = OriginRewriter(app.upstream_origins, hosts, origin,
                                                       public_host)
    return rewriter


def _target(origin: str, path_qs: str) -> URL:
    # encoded=True: the upstream gets exactly the normalised path the policy judged.
    return URL(origin + path_qs, encoded=True)


def _host_header(request: web.Request, app: AppTarget, route: RouteTarget) -> str:
    if app.config.upstream_host_header == "upstream":
        u = route.upstream
        return f"{u.host}" if u.is_default_port() else f"{u.host}:{u.port}"
    return request.headers.get("Host", app.host)


async def _body(request: web.Request, limit: int, out: Exchange) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise _TooLarge
        out.bytes_in = seen
        yield chunk


def _too_large(route: RouteTarget) -> ForwardError:
    return ForwardError(413, Reason.BODY_TOO_LARGE,
                        f"body over the route limit of {route.max_body_size} bytes",
                        route.max_body_size)


async def forward_http(request: web.Request, call: UpstreamCall, pool: UpstreamPool,
                       out: Exchange) -> web.StreamResponse:
    """Forward and stream back; ``out`` gets the upstream time and the bytes each way.

    The upstream time is measured here and only here (the audit record's ``upstream_ms``
    and the ``certgate_upstream_duration_seconds`` metric both read it): from sending
    the request until the upstream's response head arrived, or until it failed. The
    body's streaming is left out: its pace is the client's as much as the upstream's."""
    app, route, public_host, public_port = call.app, call.route, call.public_host, call.public_port
    if request.content_length is not None and request.content_length > route.max_body_size:
        raise _too_large(route)
    headers = upstream_request_headers(
        request.headers, client_ip=call.client_ip, public_host=public_host,
        public_port=public_port, host_header=_host_header(request, app, route),
        identity=call.identity_headers)
    data: Any = _body(request, route.max_body_size, out) if request.body_exists else None
    session = pool.session(app.name)
    asked = time.perf_counter()
    try:
        upstream = await session.request(
            request.method, _target(route.origin, call.path_qs),
            headers=headers, data=data, allow_redirects=False, timeout=route.timeout,
            compress=None, chunked=None if request.content_length is not None else (
                True if data is not None else None),
            **pool.request_kwargs(app.name))
    except _TooLarge:
        raise _too_large(route) from None
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise ForwardError(504, Reason.UPSTREAM_TIMEOUT, f"upstream timed out: {exc!r}") \
            from None
    except aiohttp.ClientPayloadError as exc:
        if isinstance(exc.__cause__, _TooLarge) or "_TooLarge" in repr(exc):
            raise _too_large(route) from None
        raise ForwardError(502, Reason.UPSTREAM_UNAVAILABLE, f"upstream: {exc!r}") from None
    except (aiohttp.ClientError, OSError) as exc:
        if isinstance(exc.__cause__, _TooLarge):
            raise _too_large(route) from None
        raise ForwardError(502, Reason.UPSTREAM_UNAVAILABLE, f"upstream: {exc!r}") from None
    finally:
        out.upstream_seconds = time.perf_counter() - asked
    try:
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason,
            headers=client_response_headers(upstream.headers,
                                            rewriter=_rewriter(app, public_host, public_port)))
        length = upstream.headers.get("Content-Length")
        if length is not None and length.isdigit():
            response.content_length = int(length)
        await response.prepare(request)
        if request.method != "HEAD" and upstream.status not in (204, 304):
            # Whatever has arrived, as it arrives: no re-chunking copies, and the
            # client connection's flow control keeps memory flat.
            sent = 0
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                    sent += len(chunk)
            finally:
                out.bytes_out = sent
        await response.write_eof()
        return response
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        # The status line is gone; all we can do is cut the connection so the
        # client sees a truncated response instead of a silently short one.
        log.warning("upstream of %s failed mid-response: %r", app.name, exc)
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        upstream.release()


class WebSocketRegistry:
    """Open client WebSockets, each with the facts of the upgrade request that admitted
    it, so they can be judged again and closed (``gateway.http.wsauth``)."""

    def __init__(self) -> None:
        self._open: dict[web.WebSocketResponse, Any] = {}

    def add(self, ws: web.WebSocketResponse, facts: Any) -> None:
        self._open[ws] = facts

    def discard(self, ws: web.WebSocketResponse) -> None:
        self._open.pop(ws, None)

    def open(self) -> list[tuple[web.WebSocketResponse, Any]]:
        """(socket, facts) of every open WebSocket, as of now."""
        return list(self._open.items())

    def __len__(self) -> int:
        return len(self._open)


async def forward_websocket(request: web.Request, call: UpstreamCall, pool: UpstreamPool,
                            registry: WebSocketRegistry, facts: Any) -> web.StreamResponse:
    app, route = call.app, call.route
    if not route.websockets:
        raise ForwardError(403, Reason.WEBSOCKETS_DISABLED, "websockets are off for this route")
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip()]
    headers = upstream_request_headers(
        request.headers, client_ip=call.client_ip, public_host=call.public_host,
        public_port=call.public_port, host_header=_host_header(request, app, route),
        identity=call.identity_headers)
    for name in _WS_OWN:
        headers.popall(name, None)
    url = route.upstream.with_scheme("wss" if route.upstream.scheme == "https" else "ws")
    try:
        upstream = await pool.session(app.name).ws_connect(
            _target(str(url.origin()), call.path_qs), protocols=offered, headers=headers,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10),
            autoping=True, heartbeat=route.ws_ping_interval, max_msg_size=0,
            **pool.request_kwargs(app.name))
    except aiohttp.WSServerHandshakeError as exc:
        # Asterisk answers 400 to an unknown subprotocol: pass that on, not a 101.
        return web.Response(status=exc.status or 502, text=f"upstream refused: {exc.status}\n")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise ForwardError(502, Reason.UPSTREAM_UNAVAILABLE, f"upstream ws: {exc!r}") from None

    client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                   autoping=True, heartbeat=route.ws_ping_interval,
                                   max_msg_size=0)
    await client.prepare(request)
    registry.add(client, facts)
    loop = asyncio.get_running_loop()
    last = [loop.time()]

    async def pump(src: Any, dst: Any) -> None:
        code, reason = 1000, ""
        while True:
            msg = await src.receive()
            last[0] = loop.time()
            if msg.type is WSMsgType.TEXT:
                await dst.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type is WSMsgType.CLOSE:
                # Pass the peer's close code and reason through (e.g. 4001 from a PBX).
                code, reason = msg.data or 1000, msg.extra or ""
                break
            elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                code = src.close_code or 1006
                break
        if code == 1006:  # "abnormal closure" may not be sent on the wire
            code = 1011
        await dst.close(code=code, message=reason.encode("utf-8"))

    async def idle_watch() -> None:
        while True:
            await asyncio.sleep(min(route.ws_idle_timeout, 5.0))
            if loop.time() - last[0] > route.ws_idle_timeout:
                await client.close(code=1001, message=b"idle timeout")
                await upstream.close(code=1001, message=b"idle timeout")
                return

    tasks = [asyncio.ensure_future(pump(client, upstream)),
             asyncio.ensure_future(pump(upstream, client)),
             asyncio.ensure_future(idle_watch())]
    try:
        await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()
        await client.close()
        registry.discard(client)
    return client

