"""Open WebSockets are judged again and closed (1008 "access revoked") when their
access ends: a policy reload that drops the group, a killed session, a session
past its lifetime at the periodic check. Real TLS, a real upstream WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.auth.sessions import COOKIE
from gateway.manage import factors
from tests.gateway.auth.conftest import Alice
from tests.gateway.auth.test_login import session_cookie, sign_in
from tests.gateway.conftest import HOST, Gateway, apps

SECURE = "secure.test"


@contextlib.asynccontextmanager
async def open_ws(gw: Gateway, host: str, cookie: str | None = None
                  ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    headers = {"Host": host}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    connector = aiohttp.TCPConnector(ssl=gw.client_ssl("alice"))
    async with aiohttp.ClientSession(connector=connector) as session, session.ws_connect(
            gw.url("/ws").replace("https", "wss"), headers=headers,
            server_hostname=host) as ws:
        await ws.send_str("hi")
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "echo:hi"
        yield ws


async def closed_for_access(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> Any:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    assert (msg.data, msg.extra) == (1008, "access revoked")
    return msg


async def test_a_policy_reload_that_drops_the_group_closes_its_websockets(
        gateway: Gateway) -> None:
    async with open_ws(gateway, HOST) as ws:
        cfg = yaml.safe_load(gateway.config_path.read_text())
        wiki = next(a for a in cfg["apps"] if a["name"] == "wiki")
        wiki["allow"] = [{"groups": ["sales"]}]
        gateway.config_path.write_text(yaml.safe_dump(cfg))
        assert gateway.runtime.reload(gateway.config_path)
        await closed_for_access(ws)

    async def forgotten() -> bool:
        return len(gateway.runtime.websockets) == 0

    await gateway.wait_for(forgotten)


async def test_a_reload_that_keeps_access_keeps_the_websocket(gateway: Gateway) -> None:
    async with open_ws(gateway, HOST) as ws:
        assert gateway.runtime.reload(gateway.config_path)
        assert await gateway.runtime.recheck_websockets("a test") == 0
        await ws.send_str("still")
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "echo:still"


@apps(secure={"websockets": True})
async def test_killing_the_session_closes_its_websocket(gateway: Gateway, alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    async with open_ws(gateway, SECURE, cookie) as ws:
        store = await gateway.store()
        try:
            listed = await factors.list_sessions(store, "alice")
            assert await factors.end_sessions(store, session_id=listed[0].short_id)
        finally:
            await store.close()
        await closed_for_access(ws)  # through the change feed, within a second


@apps(secure={"websockets": True})
async def test_a_session_past_its_lifetime_loses_its_websocket(gateway: Gateway,
                                                                alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    async with open_ws(gateway, SECURE, cookie) as ws:
        alice.clock.advance(13 * 3600)  # past the 12 h absolute lifetime
        gateway.runtime.websocket_check.set()  # what the periodic timer does
        await closed_for_access(ws)


@pytest.mark.config(auth={"websocket_reauth": "1s"})
@apps(secure={"websockets": True})
async def test_the_periodic_check_runs_by_itself(gateway: Gateway, alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    async with open_ws(gateway, SECURE, cookie) as ws:
        alice.clock.advance(13 * 3600)
        await closed_for_access(ws, timeout=5.0)  # nobody woke it: the 1 s timer did
