"""Two real `certgate serve` processes on one PostgreSQL database behave as one gateway.

One pair of processes for the module (each with its own node name, data dir copy
and audit file), real TLS, the CLI as its own process: a revocation on node A
denies the next request on an open keep-alive connection to node B within a
second and closes node B's open WebSocket with 1008; a session started on A
works on B and `session kill` on A ends it on B; a lockout on A holds on B; a
TOTP code accepted on A is refused on B; both nodes record when they applied the
revocation (``change.applied``). Skips without ``CERTGATE_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from gateway.store import tables as t
from gateway.store.db import serial_hex
from gateway.store.store import Store
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database
from tests.gateway.nodes import (
    SECURE,
    WIKI,
    Cluster,
    prepare,
    run_cli,
    second_factor,
    two_nodes,
    within,
)
from tests.gateway.test_server import Node
from tests.gateway.upstreams import Seen, start, upstream_app

pytestmark = pytest.mark.asyncio(loop_scope="module")
USERS = {"alice": ["staff"], "bob": ["staff"], "carol": ["staff"], "dave": ["staff"]}


@dataclass
class Pair:
    cluster: Cluster
    a: Node
    b: Node


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _create_pg_database(base)
    runner, port = await start(upstream_app(Seen()))
    try:
        root = tmp_path_factory.mktemp("nodes")
        configs, certs = await asyncio.to_thread(prepare, root, url,
                                                 f"http://127.0.0.1:{port}", USERS)
        secrets = await second_factor(configs[0], ["bob", "carol"])
        cluster = Cluster(root, url, configs, certs, root / "a" / "ca" / "root.pem", secrets)
        async with two_nodes(cluster) as (a, b):
            yield Pair(cluster, a, b)
            for node in (a, b):
                assert "Traceback" not in "".join(node.log)
    finally:
        await runner.cleanup()
        await _drop_pg_database(base, name)


async def serial_of(cluster: Cluster, user: str) -> str:
    store = await Store.open(cluster.database_url, migrate=False)
    try:
        return serial_hex((await store.list_certificates(user=user))[0].serial)
    finally:
        await store.close()


async def test_revocation_on_a_denies_open_connection_and_websocket_on_b(pair: Pair) -> None:
    alice = pair.cluster.client("alice")
    serial = await serial_of(pair.cluster, "alice")
    async with alice.session() as keep_alive, alice.session() as ws_session, \
            ws_session.ws_connect(f"wss://127.0.0.1:{pair.b.port}/ws", headers={"Host": WIKI},
                                  server_hostname=WIKI) as ws:
        for node in (pair.a, pair.b):  # both nodes let alice in
            assert (await alice.get(node))[0] == 200
        await ws.send_str("hi")
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "echo:hi"
        alice.connections = 0
        assert (await alice.get(pair.b, session=keep_alive))[0] == 200

        before = datetime.now(UTC)
        await run_cli(pair.cluster.configs[0], "cert", "revoke", serial,
                      "--reason", "keyCompromise")
        committed = datetime.now(UTC)  # the CLI has committed and exited

        async def denied() -> bool:
            status, body = await alice.get(pair.b, session=keep_alive)
            return status == 403 and "certificate-revoked" in body

        assert await within(1.0, denied) <= 1.0
        assert alice.connections == 1  # every request on that one keep-alive connection
        msg = await asyncio.wait_for(ws.receive(), 1.0)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (1008, "access revoked")

    # Each node wrote when it applied the revocation: after the CLI began, within a
    # second of its commit, never before the event was written.
    async def both_applied() -> bool:
        return len(await applied_records(pair.cluster, serial)) == 2

    await within(5.0, both_applied, every=0.1)
    records = await applied_records(pair.cluster, serial)
    assert {r["node"] for r in records} == {"node-a", "node-b"}
    for record in records:
        detail = json.loads(record["detail"])
        applied = datetime.fromisoformat(detail["applied_at"])
        created = datetime.fromisoformat(detail["created_at"])
        assert (record["reason"], record["user"], detail["kind"]) == ("revoked", "alice", "cert")
        assert before <= created <= applied
        assert (applied - committed).total_seconds() < 1.0
        assert detail["lag_ms"] == pytest.approx((applied - created).total_seconds() * 1000,
                                                 abs=0.2)


async def applied_records(cluster: Cluster, serial: str) -> list[dict[str, object]]:
    store = await Store.open(cluster.database_url, migrate=False)
    try:
        async with store._engine.connect() as conn:
            rows = await conn.execute(select(t.audit_records).where(
                t.audit_records.c.type == "change.applied", t.audit_records.c.serial == serial))
            return [dict(r._mapping) for r in rows]
    finally:
        await store.close()


async def test_session_from_a_works_on_b_and_a_used_code_is_refused_there(pair: Pair) -> None:
    bob = pair.cluster.client("bob")
    code = bob.code()
    status, body, cookie = await bob.sign_in(pair.a, code=code)
    assert status == 303 and cookie, body

    async def works_on_b() -> bool:
        return (await bob.get(pair.b, host=SECURE, cookie=cookie))[0] == 200

    await within(1.0, works_on_b)
    # The code A accepted is spent on every node: the used step is a database write.
    status, body, second = await bob.sign_in(pair.b, code=code)
    assert (status, second) == (401, None) and "login-failed" in body

    await run_cli(pair.cluster.configs[0], "session", "kill", "--user", "bob")

    async def ended_on_b() -> bool:
        return (await bob.get(pair.b, host=SECURE, cookie=cookie))[0] != 200

    await within(1.0, ended_on_b)
    status, _ = await bob.get(pair.b, host=SECURE, cookie=cookie)
    assert status in (303, 401)  # asked to sign in again
    assert (await bob.get(pair.a, host=SECURE, cookie=cookie))[0] in (303, 401)


async def test_a_lockout_on_a_holds_on_b(pair: Pair) -> None:
    carol = pair.cluster.client("carol")
    csrf = await carol.csrf(pair.a)  # one secrets key: a form of node A is good on node B
    for _ in range(3):
        status, body, _ = await carol.sign_in(pair.a, password="not it at all", csrf=csrf)
    assert status == 429 and "locked-out" in body
    status, page = await carol.get(pair.b, "/.certgate/login", host=SECURE, html=True)
    assert status == 200 and "Sign-in is locked until" in page
    status, body, cookie = await carol.sign_in(pair.b, csrf=csrf)  # the right password and code
    assert (status, cookie) == (429, None) and "locked-out" in body

