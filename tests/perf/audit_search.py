"""``audit search`` on 1 million records: SQLite, and PostgreSQL when
``CERTGATE_TEST_DATABASE_URL`` is set (a scratch database is created and dropped).

    PYTHONPATH=. python tests/perf/audit_search.py [--records 1000000] [--cli]

Fills the audit table in bulk (``executemany`` in one transaction on SQLite, ``COPY``
on PostgreSQL; the chain is not valid, search does not look at it): 90 days of
records from two nodes, 300 users with 4 certificates each, 40 apps, 5 % denials,
a few logins and sign-outs. Then times the typical searches through the same
code the CLI runs (``manage.audit_search``), best of 3 after a first run, and
prints each query's plan. ``--cli`` also times one whole ``certgate audit search``
process (Python start-up, config, migration check, query, output), wall and CPU
time, next to ``--help`` (start-up alone).
Not a test: pytest does not collect ``tests/perf``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.audit.chain import FIELDS
from gateway.manage.audit_search import build_query, search_audit
from gateway.store.audit import search_statement
from gateway.store.audit_sqlite import INSERT as _INSERT_SQLITE
from gateway.store.audit_sqlite import sqlite_at as _sqlite_at
from gateway.store.db import serial_hex, sqlite_url
from gateway.store.store import Store
from tests.conftest import _create_pg_database, _drop_pg_database

NOW = datetime.now(UTC).replace(microsecond=0)
DAYS = 90
USERS = [f"user{n:03d}" for n in range(300)]
APPS = [f"app{n:02d}" for n in range(40)]
REASONS_DENY = ["no-matching-rule", "certificate-revoked", "outside-hours", "mfa-required"]


def make_rows(count: int, chunk: int = 100_000) -> Iterator[list[tuple[Any, ...]]]:
    """``count`` records as positional tuples in FIELDS order (``at`` as ISO text), in
    lists of ``chunk`` (the same records on every call)."""
    rng = random.Random(7)
    step = DAYS * 86_400_000 / count  # ms between records
    start = NOW - timedelta(days=DAYS)
    rows: list[tuple[Any, ...]] = []
    seqs = {"gw1": 0, "gw2": 0}
    for n in range(count):
        if len(rows) == chunk:
            yield rows
            rows = []
        node = "gw1" if n % 2 else "gw2"
        seqs[node] += 1
        at = start + timedelta(milliseconds=n * step)
        u = rng.randrange(len(USERS))
        roll = rng.random()
        kind = "login" if roll < 0.03 else "session.end" if roll < 0.04 else "access"
        deny = rng.random() < 0.05
        rows.append((
            node, seqs[node], at.isoformat(timespec="milliseconds")[:-6] + "Z", kind,
            f"{rng.getrandbits(48):012x}", USERS[u], serial_hex(0x5F3A0000 + u * 4 + n % 4),
            "ab" * 32, f"192.0.2.{u % 250}", APPS[rng.randrange(len(APPS))], "GET",
            "app.example.test", f"/page/{n % 1000}", 403 if deny else 200,
            "deny" if deny else "allow", rng.choice(REASONS_DENY) if deny else "allowed",
            "app:allow[0]", "cert", None, 1.5, None, "0" * 64, "1" * 64))
    yield rows


def fill_sqlite(path: Path, count: int) -> tuple[Any, ...]:
    """Insert the records in one transaction; one record from the middle to search for."""
    db = sqlite3.connect(path)
    probe: tuple[Any, ...] = ()
    try:
        with db:
            for i, rows in enumerate(make_rows(count)):
                if not probe or i == count // 200_000:  # the middle chunk
                    probe = rows[len(rows) // 2]
                db.executemany(_INSERT_SQLITE, [(r[0], r[1], _sqlite_at(r[2]), *r[3:])
                                                for r in rows])
    finally:
        db.close()
    return probe


async def fill_postgres(url: str, count: int) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(user=parsed.username, password=parsed.password,
                                 host=parsed.host, port=parsed.port, database=parsed.database)
    try:
        at = FIELDS.index("at")
        for rows in make_rows(count):
            await conn.copy_records_to_table("audit_records", columns=list(FIELDS), records=[
                (*r[:at], datetime.fromisoformat(r[at].replace("Z", "+00:00")), *r[at + 1:])
                for r in rows])
        await conn.execute("ANALYZE audit_records")
    finally:
        await conn.close()


def searches(probe: tuple[Any, ...]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("user, last 30 days (newest 100)", {"user": "user042", "since": "30d"}),
        ("user, last 30 days (all, --limit 100000)",
         {"user": "user042", "since": "30d", "limit": 100_000}),
        ("certificate, all time (newest 100)", {"cert": probe[6]}),
        ("reference", {"ref": probe[4]}),
        ("deny, last 24 h (newest 100)", {"decision": "deny", "since": "24h"}),
        ("deny, last 24 h (all)", {"decision": "deny", "since": "24h", "limit": 100_000}),
        ("app + type, last 7 days (newest 100)", {"app": "app07", "type_": "access",
                                                  "since": "7d"}),
        ("user nobody has, all time", {"user": "nobody"}),
        ("everything, newest 100", {}),
    ]


async def plan(store: Store, query: Any) -> str:
    async with store._engine.connect() as conn:
        sql = str(search_statement(query).compile(conn.engine,
                                                  compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            steps = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
            return "; ".join(str(s[-1]) for s in steps)
        steps = (await conn.execute(text(f"EXPLAIN {sql}"))).all()
        return "; ".join(s[0].strip() for s in steps if "Index" in s[0] or "Scan" in s[0]
                         or "Sort" in s[0])


async def time_searches(url: str, probe: tuple[Any, ...]) -> None:
    store = await Store.open(url)
    try:
        for label, kwargs in searches(probe):
            query = build_query(now=datetime.now(UTC), **kwargs)
            times = []
            for _ in range(4):
                start = time.perf_counter()
                result = await search_audit(store, query)
                times.append(time.perf_counter() - start)
            first, best = times[0] * 1000, min(times[1:]) * 1000
            print(f"  {label:44} first {first:8.1f} ms   best {best:8.1f} ms   "
                  f"{len(result.records):6} records")
            print(f"      plan: {await plan(store, query)}")
    finally:
        await store.close()


def time_cli(url: str, tmp: Path) -> None:
    """One ``certgate audit search`` process end to end."""
    cli = [sys.executable, "-m", "gateway.cli.main"]
    env = {**os.environ, "CERTGATE_CA_PASSPHRASE": "bench-passphrase-123"}
    subprocess.run([*cli, "init", "--data-dir", str(tmp / "gw"), "--hostname", "gw.test"],
                   check=True, capture_output=True, env=env)
    config = tmp / "gw" / "certgate.yaml"
    data = yaml.safe_load(config.read_text())
    data["database_url"] = url
    config.write_text(yaml.safe_dump(data))
    for args in (["--help"], ["--user", "user042", "--since", "30d"],
                 ["--decision", "deny", "--since", "24h"]):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([*cli, "--config", str(config), "audit", "search", *args],
                              capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        print(f"  certgate audit search {' '.join(args):32} wall {elapsed * 1000:6.0f} ms  "
              f"CPU {cpu * 1000:6.0f} ms  (exit {done.returncode}, "
              f"{len(done.stdout.splitlines()) - 1} rows)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--cli", action="store_true")
    args = parser.parse_args()
    print(f"{args.records:,} records, {DAYS} days, 2 nodes, {len(USERS)} users, "
          f"{len(APPS)} apps")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = await Store.open(sqlite_url(path))  # the schema, migrations included
        await store.close()
        start = time.perf_counter()
        probe = fill_sqlite(path, args.records)
        print(f"sqlite: filled in {time.perf_counter() - start:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MiB)")
        await time_searches(sqlite_url(path), probe)
        if args.cli:
            time_cli(sqlite_url(path), Path(tmp))
    base = os.environ.get("CERTGATE_TEST_DATABASE_URL")
    if base:
        url, name = await _create_pg_database(base)
        try:
            store = await Store.open(url)
            await store.close()
            start = time.perf_counter()
            await fill_postgres(url, args.records)
            print(f"postgresql: filled (COPY + ANALYZE) in {time.perf_counter() - start:.1f} s")
            await time_searches(url, probe)
            if args.cli:
                with tempfile.TemporaryDirectory() as tmp:
                    time_cli(url, Path(tmp))
        finally:
            await _drop_pg_database(base, name)


if __name__ == "__main__":
    asyncio.run(main())
