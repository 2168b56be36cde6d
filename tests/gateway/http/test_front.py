"""A public listener behind a PROXY v2 balancer: the client the header names is the
request's source everywhere (policy source rules, audit ``source_ip``, X-Forwarded-For);
a balancer without a valid header, or anyone else sending one, is closed and counted."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import pytest

from gateway.http.proxyproto import build_header
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.config(proxy_protocol={
    "allowed_sources": ["127.0.0.1"], "header_timeout": "1s"})


async def exchange(gateway: Gateway, *, user: str = "carol", host: str = "pbx.test",
                   header: bytes | None = None, source: str = "127.0.0.1",
                   path: str = "/") -> tuple[int, dict[str, Any]]:
    """One HTTPS request over a raw connection that first sends ``header``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                   local_addr=(source, 0))
    try:
        if header is not None:
            writer.write(header)
            await writer.drain()
        await writer.start_tls(gateway.client_ssl(user), server_hostname=host)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
                     "Connection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.startswith(b"{") else {}


async def closed_before_tls(gateway: Gateway, header: bytes, *, source: str = "127.0.0.1"
                            ) -> bool:
    """True when the gateway closes the connection instead of completing a handshake."""
    try:
        await exchange(gateway, header=header, source=source)
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, IndexError):
        return True
    return False


async def audited(gateway: Gateway) -> list[dict[str, Any]]:
    await gateway.runtime.audit.flush()
    path = gateway.runtime.state.config.audit.path
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def refused(gateway: Gateway, reason: str) -> float:
    value = gateway.runtime.metrics.registry.get_sample_value(
        "certgate_proxy_protocol_refused_total", {"reason": reason})
    return value or 0.0


async def test_the_headers_client_is_the_source_for_policy_and_audit(gateway: Gateway) -> None:
    # pbx allows carol only from 192.0.2.0/24: the header decides, not the socket.
    inside = build_header(("192.0.2.10", 40000), ("127.0.0.1", gateway.port))
    assert (await exchange(gateway, header=inside))[0] == 200
    assert gateway.seen.last["headers"]["X-Forwarded-For"] == "192.0.2.10"
    outside = build_header(("203.0.113.7", 40001), ("127.0.0.1", gateway.port))
    status, body = await exchange(gateway, header=outside)
    assert status == 403
    records = {r["reference"]: r for r in await audited(gateway)}
    assert records[body["reference"]]["source_ip"] == "203.0.113.7"
    assert [r["source_ip"] for r in records.values() if r.get("app") == "pbx"] == [
        "192.0.2.10", "203.0.113.7"]


async def test_ipv6_clients_and_local_health_checks(gateway: Gateway) -> None:
    v6 = build_header(("2001:db8::7", 5000), ("::1", gateway.port))
    status, _ = await exchange(gateway, user="alice", host="wiki.test", header=v6)
    assert status == 200
    records = await audited(gateway)
    assert records[-1]["source_ip"] == "2001:db8::7"
    # LOCAL (the balancer's own check): the real peer stands; local.test wants 127/8.
    status, _ = await exchange(gateway, user="alice", host="local.test",
                               header=build_header(None))
    assert status == 200


@pytest.mark.parametrize(("header", "reason"), [
    (b"", "timeout"),  # nothing at all within header_timeout
    (b"\x16\x03\x01" + bytes(13), "no-header"),  # TLS straight away: not what the balancer does
    (b"PROXY TCP4 203.0.113.7 127.0.0.1 4000 443\r\n", "version-1"),
    (build_header(("203.0.113.7", 1))[:14] + b"\xff\xff", "malformed"),
])
async def test_a_listed_source_without_a_valid_header_is_closed(
        gateway: Gateway, header: bytes, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    before = refused(gateway, reason)
    if header:
        assert await closed_before_tls(gateway, header)
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the gateway
        writer.close()
    assert refused(gateway, reason) == before + 1
    assert "closed a connection from 127.0.0.1" in caplog.text


async def test_an_unlisted_source_is_served_directly_but_may_not_send_a_header(
        gateway: Gateway) -> None:
    # 127.0.0.2 is not a balancer: it connects as itself...
    status, _ = await exchange(gateway, user="alice", host="wiki.test", source="127.0.0.2")
    assert status == 200
    assert (await audited(gateway))[-1]["source_ip"] == "127.0.0.2"
    # ...and may not claim to speak for anyone else.
    before = refused(gateway, "unlisted-source")
    claim = build_header(("192.0.2.10", 40000), ("127.0.0.1", gateway.port))
    assert await closed_before_tls(gateway, claim, source="127.0.0.2")
    assert await closed_before_tls(gateway, b"PROXY TCP4 192.0.2.10 127.0.0.1 1 2\r\n",
                                   source="127.0.0.2")
    assert refused(gateway, "unlisted-source") == before + 2


@pytest.mark.config(proxy_protocol={"allowed_sources": ["127.0.0.1"],
                                    "listeners": ["public", "pki"]})
async def test_the_plain_http_pki_listener_reads_the_header_too(gateway: Gateway) -> None:
    async def fetch(header: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.pki_port)
        writer.write(header + b"GET /crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            return await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:  # closed with the request unread: a reset
            return b""
        finally:
            writer.close()

    served = await fetch(build_header(("198.51.100.4", 1234), ("127.0.0.1", gateway.pki_port)))
    assert served.startswith(b"HTTP/1.1 200")
    before = refused(gateway, "no-header")
    assert await fetch(b"") == b""  # plain HTTP from the balancer without a header
    assert refused(gateway, "no-header") == before + 1
