"""Slow and flooding clients against a real gateway on loopback; the guard's counters.

The flood is bounded (60 connections, a few seconds) and the limits are lowered
for it through the ``config`` marker, so the test proves the mechanism, not the
defaults: a trickling client is closed by the head deadline, connections beyond
the anonymous caps are closed at once, and meanwhile a client with a certificate
still gets in and a revocation still reaches its open keep-alive connection.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from gateway.config import LimitsConfig
from gateway.http.guard import Guard
from tests.gateway.conftest import HOST, Gateway

FLOOD = 60
HEAD_TIMEOUT = 1.0
LIMITS = {"request_head_timeout": "1s", "idle_timeout": "30s", "handshake_timeout": "2s",
          "max_anonymous_per_source": 20, "max_anonymous": 40}


async def _trickle(gw: Gateway, ctx: ssl.SSLContext, loop: asyncio.AbstractEventLoop
                   ) -> float | None:
    """One header line every 0.2 s without ever ending the head; seconds until closed."""
    start = loop.time()
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", gw.port, ssl=ctx, server_hostname=HOST)
    except (OSError, ssl.SSLError):
        return 0.0
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        for i in range(50):  # at most 10 s: the deadline is 1 s
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.2)
            except TimeoutError:
                writer.write(f"X-Slow-{i}: x\r\n".encode())
                continue
            if not data:
                return loop.time() - start
        return None
    except (OSError, ssl.SSLError):
        return loop.time() - start
    finally:
        writer.close()


@pytest.mark.config(limits=LIMITS)
async def test_a_flood_of_slow_clients_neither_locks_out_nor_delays_revocation(
        gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    anonymous = gateway.client_ssl(None)
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl("alice"), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def get() -> tuple[int, str]:
            async with session.get(gateway.url("/"), headers={
                    "Host": HOST, "Accept": "application/json"},
                    server_hostname=HOST) as resp:
                data = await resp.json()
                return resp.status, data.get("error", "")

        assert (await get())[0] == 200  # the keep-alive connection, opened before the flood
        flood = [asyncio.create_task(_trickle(gateway, anonymous, loop)) for _ in range(FLOOD)]
        try:
            async def flooded() -> bool:
                return _guard(gateway).anonymous >= 20

            await gateway.wait_for(flooded, 5.0)
            # (a) a client with a certificate still gets in, on a new connection too.
            status, _, _ = await gateway.request("GET", "/")
            assert status == 200
            # (b) a revocation reaches the open keep-alive connection within a second.
            await gateway.revoke("alice")

            async def refused() -> bool:
                return await get() == (403, "certificate-revoked")

            assert await gateway.wait_for(refused, timeout=1.0) <= 1.0
            closed = await asyncio.gather(*flood)
        finally:
            for task in flood:
                task.cancel()
    # (c) every trickling connection was closed: beyond the caps at once, the others by
    # the head deadline (never later than the deadline plus scheduling slack).
    assert all(t is not None for t in closed), closed
    by_deadline = [t for t in closed if t is not None and t >= HEAD_TIMEOUT * 0.9]
    assert len(by_deadline) >= 20 and max(by_deadline) < HEAD_TIMEOUT + 2.0, closed
    assert _guard(gateway).timed_out >= 20 and _guard(gateway).refused >= 1


def _guard(gateway: Gateway) -> Guard:
    assert gateway.runtime.guard is not None
    return gateway.runtime.guard


def _limits(**kwargs: object) -> LimitsConfig:
    return LimitsConfig.model_validate(kwargs)


def test_the_fd_budget_and_the_caps_refuse_and_release() -> None:
    known = {"f" * 64}
    guard = Guard(_limits(max_anonymous_per_source=2, max_anonymous=3, fd_reserve=16),
                  lambda fp: fp in known, lambda source, ref: None, fd_limit=40)
    assert guard.budget == 12
    # No TLS transport: no certificate, so anonymous.
    assert guard.admit(None, "10.0.0.1", True, 0.0) is True
    assert guard.admit(None, "10.0.0.1", True, 0.0) is True
    assert guard.admit(None, "10.0.0.1", True, 0.0) is None  # per source
    assert guard.admit(None, "10.0.0.2", True, 0.0) is True
    assert guard.admit(None, "10.0.0.3", True, 0.0) is None  # in total
    assert guard.admit(None, "10.0.0.3", False, 0.0) is False  # uncapped listener
    for _ in range(8):
        assert guard.admit(None, "10.0.0.3", False, 0.0) is False
    assert guard.admit(None, "10.0.0.3", False, 0.0) is None  # the fd budget
    guard.release("10.0.0.1", True)
    assert guard.per_source == {"10.0.0.1": 1, "10.0.0.2": 1}
    assert guard.admit(None, "10.0.0.1", True, 0.0) is True  # its slot is free again
    assert guard.admit(None, "10.0.0.4", False, 0.0) is None  # and the budget full again
    assert (guard.open, guard.anonymous, guard.refused) == (12, 3, 4)
