"""The no-loss proof (issue 10): a real gateway over real TLS keeps serving while its
database refuses writes, and once the database is back every request of the run has
exactly one audit record, in order, and ``certgate audit verify`` passes.

Two outages: PostgreSQL refusing connections (``ALLOW_CONNECTIONS false`` and its
backends terminated, as an operator or a failover does) and SQLite made unwritable
(its directory read-only; as root, whom modes don't stop, the directory is moved
away and a plain file put in its place, so the database can be neither opened nor
created).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.cli.main import main
from gateway.store.db import sqlite_url
from gateway.store.store import Store
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database
from tests.gateway.audit.helpers import stored
from tests.gateway.audit.serving import serving
from tests.gateway.conftest import Gateway, Template

BEFORE, DURING, AFTER = 15, 25, 10


async def traffic(gw: Gateway, label: str, count: int) -> list[str]:
    paths = []
    for n in range(count):
        path = f"/{label}/{n}"
        status, _, _ = await gw.request("GET", path)
        assert status == 200, (path, status)  # keep-serving: the outage costs no request
        paths.append(path)
    return paths


async def prove(gw: Gateway, database_url: str, outage: Callable[[], Awaitable[None]],
                restore: Callable[[], Awaitable[None]]) -> None:
    audit = gw.runtime.audit
    sent = await traffic(gw, "before", BEFORE)

    async def writer_idle() -> bool:
        return len(audit) == 0 and not audit.failing

    await gw.wait_for(writer_idle, 5)
    await outage()
    sent += await traffic(gw, "during", DURING)

    async def failing() -> bool:
        return audit.failing

    await gw.wait_for(failing, 10)  # the writer noticed: records are being kept
    assert audit.spooled > 0
    sent += await traffic(gw, "during-noticed", 5)
    await restore()
    await gw.wait_for(writer_idle, 15)  # everything kept is written
    sent += await traffic(gw, "after", AFTER)
    await gw.wait_for(writer_idle, 5)

    store = await Store.open(database_url, migrate=False)
    try:
        rows = await stored(store, audit.node)
    finally:
        await store.close()
    access = [r["path"] for r in rows if r["type"] == "access"]
    assert access == sent  # every request exactly once, in the order it was served
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + len(rows)))


async def verify(config_path: Path) -> None:
    code = await asyncio.to_thread(main, ["--config", str(config_path), "audit", "verify"])
    assert code == 0


async def test_postgresql_refusing_connections_loses_no_record(
        tmp_path: Path, gateway_template: Template) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _create_pg_database(base)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")

    async def allow(allowed: bool) -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allowed}'))
            if not allowed:
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM "
                                        "pg_stat_activity WHERE datname = :name"),
                                   {"name": name})

    try:
        async with serving(tmp_path, gateway_template, url) as gw:
            await prove(gw, url, lambda: allow(False), lambda: allow(True))
            config_path = gw.config_path
        await verify(config_path)
    finally:
        with contextlib.suppress(Exception):
            await allow(True)
        await admin.dispose()
        await _drop_pg_database(base, name)


async def test_sqlite_made_unwritable_loses_no_record(tmp_path: Path,
                                                      gateway_template: Template) -> None:
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    template_db = gateway_template.root / "gw" / "certgate.db"
    for suffix in ("", "-wal", "-shm"):
        if (src := template_db.with_name(template_db.name + suffix)).exists():
            (db_dir / src.name).write_bytes(src.read_bytes())
    url = sqlite_url(db_dir / "certgate.db")
    away = tmp_path / "db-away"
    root = os.geteuid() == 0

    async def outage() -> None:
        if root:  # modes don't stop root: no directory at all, a file in its place
            db_dir.rename(away)
            db_dir.write_text("not a directory\n")
        else:
            (db_dir / "certgate.db").chmod(stat.S_IRUSR)
            db_dir.chmod(stat.S_IRUSR | stat.S_IXUSR)

    async def restore() -> None:
        if root:
            db_dir.unlink()
            away.rename(db_dir)
        else:
            db_dir.chmod(0o700)
            (db_dir / "certgate.db").chmod(0o600)

    async with serving(tmp_path, gateway_template, url) as gw:
        await prove(gw, url, outage, restore)
        config_path = gw.config_path
    await verify(config_path)

