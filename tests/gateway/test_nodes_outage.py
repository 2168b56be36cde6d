"""Database outages under real `certgate serve` processes.

Three outages, each with its own database and nodes:

- PostgreSQL refuses connections (``ALLOW_CONNECTIONS false``, the nodes'
  backends terminated) while one writer that kept its connection revokes a
  certificate (two nodes; skips without ``CERTGATE_TEST_DATABASE_URL``);
- a private PostgreSQL cluster (``initdb`` into a temporary directory, its own
  loopback port; never the machine's main cluster) stopped with ``pg_ctl stop -m
  fast`` and started again (two nodes; skips without ``initdb``);
- the SQLite file taken away and brought back (one node).

During each: signed-in sessions keep working, ``/readyz`` stays 200 and says
``degraded`` with the reason, a sign-in gets the 503 "sign-in unavailable" page.
After: what was revoked meanwhile is enforced as soon as a node reports itself
recovered, and a revocation through the CLI reaches every node's open keep-alive
connection within a second, as before the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.config import load_config
from gateway.store.db import serial_hex, sqlite_url
from gateway.store.store import Store
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database
from tests.gateway.conftest import free_port
from tests.gateway.nodes import (
    SECURE,
    Client,
    Cluster,
    prepare,
    readyz,
    run_cli,
    second_factor,
    two_nodes,
    within,
)
from tests.gateway.test_server import Node, serve_node
from tests.gateway.upstreams import Seen, start, upstream_app

USERS = {"alice": ["staff"], "bob": ["staff"], "dave": ["staff"]}


@contextlib.asynccontextmanager
async def cluster_on(database_url: str, root: Path) -> AsyncIterator[Cluster]:
    runner, port = await start(upstream_app(Seen()))
    try:
        configs, certs = await asyncio.to_thread(prepare, root, database_url,
                                                 f"http://127.0.0.1:{port}", USERS)
        secrets = await second_factor(configs[0], ["bob"])
        yield Cluster(root, database_url, configs, certs, root / "a" / "ca" / "root.pem",
                      secrets)
    finally:
        await runner.cleanup()


class Scene:
    """The nodes, bob signed in, alice and dave each on an open keep-alive connection."""

    def __init__(self, cluster: Cluster, nodes: tuple[Node, ...]) -> None:
        self.cluster, self.nodes = cluster, nodes
        self.bob, self.alice, self.dave = (cluster.client(u) for u in ("bob", "alice", "dave"))
        self.cookie = ""
        self._stack = contextlib.AsyncExitStack()
        self.open: dict[tuple[str, int], aiohttp.ClientSession] = {}

    async def __aenter__(self) -> Scene:
        status, body, cookie = await self.bob.sign_in(self.nodes[0])
        assert status == 303 and cookie, body
        self.cookie = cookie
        for client in (self.alice, self.dave):
            for node in self.nodes:
                session = await self._stack.enter_async_context(client.session())
                assert (await client.get(node, session=session))[0] == 200
                self.open[client.user, node.port] = session
        await within(2.0, self.bob_signed_in)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def bob_signed_in(self) -> bool:
        statuses = [(await self.bob.get(n, host=SECURE, cookie=self.cookie))[0]
                    for n in self.nodes]
        return statuses == [200] * len(self.nodes)

    async def denied(self, client: Client) -> bool:
        """Every node refuses ``client`` on the connection opened before."""
        for node in self.nodes:
            status, body = await client.get(node, session=self.open[client.user, node.port])
            if status != 403 or "certificate-revoked" not in body:
                return False
        return True

    async def during_outage(self) -> None:
        """Sessions work, /readyz says why it is degraded, sign-in answers 503."""
        async def all_degraded() -> bool:
            return not any([(await readyz(n))["database_reachable"] for n in self.nodes])

        await within(20.0, all_degraded, every=0.1)
        for node in self.nodes:
            body = await readyz(node)
            assert body["status"] == "degraded" and body["ready"] is True, body
            reasons = {d["component"]: d["reason"] for d in body["degraded"]}
            assert "cannot reach the database" in str(reasons.get("database")), body
        assert await self.bob_signed_in()  # served from memory
        for node in self.nodes:
            status, page = await self.bob.get(node, "/.certgate/login", host=SECURE, html=True)
            assert status == 503, page
            assert "Signing in is not possible right now" in page
            assert "Traceback" not in page

    async def after_return(self, revoked_meanwhile: Client, config: Path) -> None:
        """What was revoked meanwhile is enforced once the nodes have recovered; then a
        revocation through the CLI reaches every open connection within 1 s."""
        async def all_recovered() -> bool:
            return all([(await readyz(n))["database_reachable"] for n in self.nodes])

        await within(30.0, all_recovered, every=0.1)
        await within(1.0, lambda: self.denied(revoked_meanwhile))
        assert await self.bob_signed_in()
        serial = await _serial(self.cluster.database_url, "alice")
        await run_cli(config, "cert", "revoke", serial)
        assert await within(1.0, lambda: self.denied(self.alice)) <= 1.0
        for node in self.nodes:
            # A traceback only in the one record of a background task starting to fail.
            unexpected = [line for line in node.log
                          if "Traceback" in line and "retrying with backoff" not in line]
            assert not unexpected, unexpected[0][:3000]


async def _serial(url: str, user: str) -> str:
    store = await Store.open(url, migrate=False)
    try:
        return serial_hex((await store.list_certificates(user=user))[0].serial)
    finally:
        await store.close()


async def _revoke(store: Store, user: str) -> None:
    serial = (await store.list_certificates(user=user))[0].serial
    await store.revoke_certificate(serial, reason="keyCompromise", at=datetime.now(UTC))


# --- PostgreSQL refusing connections --------------------------------------------------


async def test_postgresql_refusing_connections(tmp_path: Path) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _create_pg_database(base)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    writer: Store | None = None
    try:
        async with cluster_on(url, tmp_path) as cluster, two_nodes(cluster) as nodes, \
                Scene(cluster, nodes) as scene:
            # A writer that keeps its connection (one pooled connection, held open).
            writer = await Store.open(url, migrate=False)
            async with writer._engine.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                await conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> :keep"), {"name": name, "keep": pid})
            await scene.during_outage()
            await _revoke(writer, "dave")  # the nodes can't hear of it yet
            await asyncio.sleep(0)
            assert await scene.bob_signed_in()
            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            await scene.after_return(scene.dave, cluster.configs[0])
    finally:
        if writer is not None:
            await writer.close()
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        await admin.dispose()
        await _drop_pg_database(base, name)


# --- a private PostgreSQL cluster, stopped and started ------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivateCluster:
    """A PostgreSQL cluster of the test's own, on a free loopback port."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data = root / "pgdata"
        self.port = free_port()
        # initdb refuses to run as root: as root, run the tools as the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, args[0],
                                                done.stdout, done.stderr)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync")
        self.start()

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


async def test_postgresql_server_restart(tmp_path: Path) -> None:
    bindir = _pg_bin()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries (initdb) here")
    # Not under pytest's root-only temporary directory: the server runs as postgres.
    pg_root = Path(tempfile.mkdtemp(prefix="certgate-pg-"))
    server = PrivateCluster(bindir, pg_root)
    try:
        await asyncio.to_thread(server.init)
        url, _ = await _create_pg_database(server.url)
        async with cluster_on(url, tmp_path / "gw") as cluster, two_nodes(cluster) as nodes, \
                Scene(cluster, nodes) as scene:
            await asyncio.to_thread(server.stop)
            await scene.during_outage()
            await asyncio.to_thread(server.start)
            # Revoked the moment the server is back, before the nodes have reconnected.
            writer = await Store.open(url, migrate=False)
            try:
                await _revoke(writer, "dave")
            finally:
                await writer.close()
            await scene.after_return(scene.dave, cluster.configs[0])
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            await asyncio.to_thread(server.stop)
        shutil.rmtree(pg_root, ignore_errors=True)


# --- SQLite taken away --------------------------------------------------------------


async def test_sqlite_taken_away_and_back(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"  # a directory of its own, so the test can take it away
    db_dir.mkdir()
    url = sqlite_url(db_dir / "certgate.db")
    async with cluster_on(url, tmp_path / "gw") as cluster:
        config = cluster.configs[0]
        assert load_config(config).database_url == url
        async with serve_node(config, config.parent) as node, \
                Scene(cluster, (node,)) as scene:
            away = db_dir.with_name("db-away")
            db_dir.rename(away)
            try:
                await scene.during_outage()
                # An admin revokes meanwhile, through another path to the same file.
                other = await Store.open(sqlite_url(away / "certgate.db"), migrate=False)
                try:
                    await _revoke(other, "dave")
                finally:
                    await other.close()
                assert await scene.bob_signed_in()
            finally:
                away.rename(db_dir)
            await scene.after_return(scene.dave, config)

