"""Two processes migrating one fresh database at the same moment (two nodes starting
together on an empty PostgreSQL, two commands on a new SQLite file) both succeed and
leave the schema at head exactly once; and a migration that fails rolls back whole."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from gateway.store.db import make_engine, migrate_async, sqlite_url

ROOT = Path(__file__).resolve().parents[3]

# Each child imports everything first, says so, then blocks on its stdin until the
# test releases all of them at once: they reach Alembic's "which revision is this
# database at?" within a millisecond or so of each other.
_CHILD = """
import sys
from gateway.store.db import migrate
print("ready", flush=True)
sys.stdin.readline()
migrate(sys.argv[1])
"""


def _migrate_together(url: str, count: int = 2) -> list[tuple[int, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, url], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(count)]
    try:
        for proc in procs:  # the barrier: every child is loaded and waiting
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            _out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def _versions(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


def _both_succeed(url: str) -> None:
    for code, err in _migrate_together(url):
        assert code == 0, err[-3000:]
    assert asyncio.run(_versions(url)) == ["0008"]


def test_two_processes_migrate_one_fresh_sqlite_file(tmp_path: Path) -> None:
    _both_succeed(sqlite_url(tmp_path / "certgate.db"))


def test_two_processes_migrate_one_fresh_postgres(pg_url: str) -> None:
    _both_succeed(pg_url)


async def test_a_failed_migration_leaves_nothing_half_applied(database_url: str) -> None:
    # A table in the way of the last revision: every earlier one applies, then it fails.
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE password_resets (x INTEGER)"))
    finally:
        await engine.dispose()
    with pytest.raises(Exception, match="password_resets"):
        await migrate_async(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    assert tables == ["password_resets"]  # no users, no alembic_version: all rolled back
