"""Forwarding to a real aiohttp upstream on port 0: bodies stream both ways, hop-by-hop
and spoofed headers stay behind, the body limit holds, and a dead or slow upstream
becomes a ``ForwardError`` with the right status and reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import AppConfig
from gateway.http.exchange import Exchange
from gateway.http.forward import ForwardError, UpstreamCall, forward_http
from gateway.http.routing import Router
from gateway.http.upstream import UpstreamPool
from policies.model import Reason
from tests.gateway.upstreams import start

MiB = 2**20
WAIT = 10.0  # generous: a broken stream shows as a timeout, a working one is instant


@dataclass
class Upstream:
    """A controllable upstream; events let the test see bytes arrive while they flow."""

    port: int
    headers: list[dict[str, str]] = field(default_factory=list)
    hits: int = 0
    received: int = 0
    sha256: str = ""
    first_upload_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    client_got_first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    release_slow: asyncio.Event = field(default_factory=asyncio.Event)


def upstream_app(state: list[Upstream]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        up = state[0]
        up.hits += 1
        up.headers.append(dict(request.headers))
        return web.json_response({"path": request.raw_path, "method": request.method},
                                 headers={"Proxy-Authenticate": "Basic", "Trailer": "X-Sum",
                                          "X-Drop-Me": "1", "Connection": "X-Drop-Me",
                                          "X-Kept": "yes"})

    async def upload(request: web.Request) -> web.Response:
        up = state[0]
        up.hits += 1
        digest = hashlib.sha256()
        async for chunk in request.content.iter_any():
            up.received += len(chunk)
            digest.update(chunk)
            up.first_upload_chunk.set()
        up.sha256 = digest.hexdigest()
        return web.json_response({"bytes": up.received})

    async def download(request: web.Request) -> web.StreamResponse:
        up = state[0]
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = 4 * MiB
        await response.prepare(request)
        await response.write(b"\x01" * MiB)
        # The rest only once the client holds the first MiB: a forwarder that
        # buffered the whole body would wait here forever.
        await asyncio.wait_for(up.client_got_first_chunk.wait(), WAIT)
        for _ in range(3):
            await response.write(b"\x02" * MiB)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.wait_for(state[0].release_slow.wait(), WAIT)
        return web.Response(text="late")

    app = web.Application(client_max_size=64 * MiB)
    app.router.add_post("/upload", upload)
    app.router.add_post("/small/upload", upload)
    app.router.add_get("/download", download)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@dataclass
class Front:
    """A minimal front server whose only handler is ``forward_http``."""

    url: str
    errors: list[ForwardError]
    upstream: Upstream
    exchanges: list[Exchange]


async def _front(upstream_url: str, upstream: Upstream, **app_keys: Any
                 ) -> tuple[web.AppRunner, Front, UpstreamPool]:
    config = AppConfig.model_validate({
        "name": "wiki", "host": "wiki.test", "upstream": upstream_url,
        "allow": [{"groups": ["staff"]}], "max_body_size": "64MiB",
        "routes": [{"path": "/small", "max_body_size": "1MiB"}], **app_keys})
    router = Router([config])
    pool = UpstreamPool(router)
    errors: list[ForwardError] = []
    exchanges: list[Exchange] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        target = router.apps["wiki.test"]
        out = Exchange("ref", datetime.now(UTC), request.method, "wiki.test", "192.0.2.7",
                       request.path, None)
        exchanges.append(out)
        try:
            call = UpstreamCall(
                app=target, route=target.route_for(request.path), path_qs=request.raw_path,
                identity_headers={"X-Certgate-User": "alice"}, public_host="wiki.test",
                public_port=8443, client_ip="192.0.2.7")
            return await forward_http(request, call, pool, out)
        except ForwardError as exc:
            errors.append(exc)
            return web.Response(status=exc.status, text=exc.reason.value)

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, port = await start(app)
    return runner, Front(f"http://127.0.0.1:{port}", errors, upstream, exchanges), pool


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    state: list[Upstream] = []
    up_runner, up_port = await start(upstream_app(state))
    state.append(Upstream(up_port))
    runner, front_, pool = await _front(f"http://127.0.0.1:{up_port}", state[0])
    try:
        yield front_
    finally:
        state[0].release_slow.set()
        await runner.cleanup()
        await pool.close()
        await up_runner.cleanup()


async def test_headers_toward_the_upstream(front: Front) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            front.url + "/page?q=1", headers={
                "Host": "wiki.test", "Connection": "keep-alive, X-Private",
                "X-Private": "hop", "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic x",
                "TE": "trailers", "X-Certgate-User": "mallory", "X-Forwarded-For": "10.6.6.6",
                "Cookie": "sid=1"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"path": "/page?q=1", "method": "GET"}
    seen = {k.lower(): v for k, v in front.upstream.headers[-1].items()}
    for gone in ("x-private", "keep-alive", "proxy-authorization", "te"):
        assert gone not in seen, gone
    assert seen["x-certgate-user"] == "alice"
    assert seen["x-forwarded-for"] == "192.0.2.7"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "wiki.test"
    assert seen["x-forwarded-port"] == "8443"
    assert seen["host"] == "wiki.test"
    assert seen["cookie"] == "sid=1"


async def test_headers_toward_the_client(front: Front) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            front.url + "/page", headers={"Host": "wiki.test"}) as resp:
        assert resp.status == 200
        assert resp.headers["X-Kept"] == "yes"
        for gone in ("Proxy-Authenticate", "Trailer", "X-Drop-Me"):
            assert gone not in resp.headers, gone


async def test_upload_streams_to_the_upstream(front: Front) -> None:
    up = front.upstream
    body = [bytes([i]) * MiB for i in range(8)]

    async def chunks() -> AsyncIterator[bytes]:
        yield body[0]
        # The upstream must see bytes before the client has sent the rest.
        await asyncio.wait_for(up.first_upload_chunk.wait(), WAIT)
        for chunk in body[1:]:
            yield chunk

    async with aiohttp.ClientSession() as session, session.post(
            front.url + "/upload", data=chunks(), headers={"Host": "wiki.test"}) as resp:
        assert resp.status == 200
        reply = await resp.read()
        assert json.loads(reply) == {"bytes": 8 * MiB}
    assert up.sha256 == hashlib.sha256(b"".join(body)).hexdigest()
    # What the audit record of this request says it carried, and how long the upstream took.
    [out] = front.exchanges
    assert (out.bytes_in, out.bytes_out) == (8 * MiB, len(reply))
    assert out.upstream_seconds is not None and out.upstream_seconds > 0


async def test_download_streams_to_the_client(front: Front) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            front.url + "/download", headers={"Host": "wiki.test"}) as resp:
        assert resp.status == 200
        assert resp.content_length == 4 * MiB
        first = await resp.content.readexactly(MiB)
        front.upstream.client_got_first_chunk.set()
        rest = await resp.read()
    assert first == b"\x01" * MiB
    assert rest == b"\x02" * (3 * MiB)
    [out] = front.exchanges
    assert (out.bytes_in, out.bytes_out) == (0, 4 * MiB)


async def test_declared_body_over_the_route_limit_never_reaches_the_upstream(
        front: Front) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            front.url + "/small/upload", data=b"x" * (MiB + 1),
            headers={"Host": "wiki.test"}) as resp:
        assert resp.status == 413
    [error] = front.errors
    assert (error.status, error.reason, error.limit) == (413, Reason.BODY_TOO_LARGE, MiB)
    assert front.upstream.hits == 0


async def test_streamed_body_over_the_route_limit_is_cut(front: Front) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * (MiB // 2)

    async with aiohttp.ClientSession() as session, session.post(
            front.url + "/small/upload", data=chunks(), headers={"Host": "wiki.test"}) as resp:
        assert resp.status == 413
    [error] = front.errors
    assert (error.status, error.reason, error.limit) == (413, Reason.BODY_TOO_LARGE, MiB)
    assert front.upstream.received <= MiB  # never more than the limit went through


async def test_body_within_the_route_limit_passes(front: Front) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            front.url + "/small/upload", data=b"z" * MiB, headers={"Host": "wiki.test"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"bytes": MiB}
    assert front.errors == []


async def test_upstream_down_is_a_502() -> None:
    # Bound but never listening: connections are refused, and no other process can
    # take the port while the test runs (a closed port could be reused).
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    port = int(reserved.getsockname()[1])
    runner, front_, pool = await _front(f"http://127.0.0.1:{port}", Upstream(0))
    try:
        async with aiohttp.ClientSession() as session, session.get(
                front_.url + "/page", headers={"Host": "wiki.test"}) as resp:
            assert resp.status == 502
            assert await resp.text() == "upstream-unavailable"
    finally:
        await runner.cleanup()
        await pool.close()
        reserved.close()
    [error] = front_.errors
    assert (error.status, error.reason) == (502, Reason.UPSTREAM_UNAVAILABLE)
    assert "127.0.0.1" in error.detail  # for the log; the page never shows it


async def test_upstream_too_slow_is_a_504() -> None:
    state: list[Upstream] = []
    up_runner, up_port = await start(upstream_app(state))
    state.append(Upstream(up_port))
    runner, front_, pool = await _front(f"http://127.0.0.1:{up_port}", state[0],
                                        read_timeout=0.2)
    try:
        async with aiohttp.ClientSession() as session, session.get(
                front_.url + "/slow", headers={"Host": "wiki.test"}) as resp:
            assert resp.status == 504
    finally:
        state[0].release_slow.set()
        await runner.cleanup()
        await pool.close()
        await up_runner.cleanup()
    [error] = front_.errors
    assert (error.status, error.reason) == (504, Reason.UPSTREAM_TIMEOUT)


@pytest.mark.parametrize(("head", "body", "content_type"), [
    ("Content-Length: 5", b"hello", None),
    ("Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n", None),
    ("Content-Length: 0", b"", None),
    ("Content-Length: 5\r\nContent-Type: text/plain; charset=latin-1", b"hello",
     "text/plain; charset=latin-1"),
    ("Transfer-Encoding: chunked\r\nContent-Type: application/x-ndjson",
     b"5\r\nhello\r\n0\r\n\r\n", "application/x-ndjson"),
], ids=["length-no-type", "chunked-no-type", "empty-no-type", "length-typed", "chunked-typed"])
async def test_content_type_is_forwarded_exactly_as_sent(
        front: Front, head: str, body: bytes, content_type: str | None) -> None:
    """aiohttp's client labels a body without a type application/octet-stream; the
    upstream must get what the client sent. Raw bytes: no client library adds anything."""
    port = int(front.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST /form HTTP/1.1\r\nHost: wiki.test\r\n{head}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), WAIT)
        await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    assert status_line.split()[1] == b"200"
    seen = {k.lower(): v for k, v in front.upstream.headers[-1].items()}
    assert seen.get("content-type") == content_type
