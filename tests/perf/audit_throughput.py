"""Sustained audit records per second into the table: SQLite, and PostgreSQL when
``CERTGATE_TEST_DATABASE_URL`` is set (a scratch database is created and dropped).

    PYTHONPATH=. python tests/perf/audit_throughput.py [--records 200000]

Emits records as fast as the loop allows while the writer runs, then waits for the
drain; prints records/s end to end (chaining + inserts), records per CPU-second of
this process (all its threads: the figure a busy shared machine disturbs least; the
database server's own CPU is not in it) and how long the event loop was blocked at
most (a 1 ms ticker measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit.record import AuditRecord
from gateway.audit.sinks import DatabaseSink
from gateway.audit.writer import AuditWriter
from gateway.http.pages import new_reference
from gateway.store.db import sqlite_url
from gateway.store.store import Store
from tests.conftest import _create_pg_database, _drop_pg_database


def traffic(count: int) -> Iterator[AuditRecord]:
    """Records shaped like a gateway's: time moving forward, a random reference each
    (as ``new_reference`` makes them), 30 people on 5 apps, one request in 20 refused.
    The shape matters to SQLite: records repeating the same few ``at`` values land in
    the middle of every ``…_at`` index instead of at its end, several times slower."""
    people = [f"user{n:02d}" for n in range(30)]
    apps = ["wiki", "tickets", "books", "pbx", "intranet"]
    start = datetime.now(UTC)
    for n in range(count):
        refused = n % 20 == 19
        # Built once, as the request path builds it (its µs count: same process).
        yield AuditRecord(
            reference=new_reference(), at=start + timedelta(microseconds=50 * n),
            decision="deny" if refused else "allow",
            reason="not-allowed" if refused else "allowed", rule="wiki:allow[0]",
            app=apps[n % 5], user=people[n % 30], serial=f"{n % 30:032X}",
            fingerprint="ab" * 32, method="GET", host="wiki.example.test",
            path=f"/page/{n % 97}", source_ip="192.0.2.7", status=403 if refused else 200,
            duration_ms=0.5)


async def measure(url: str, count: int) -> tuple[float, float, float]:
    store = await Store.open(url)
    writer = AuditWriter(node="bench", sinks=[DatabaseSink(store, "bench")],
                         spool_path=Path(tempfile.mkdtemp()) / "spool", flush_interval=0.05)
    await writer.start()
    worst = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    tick = asyncio.create_task(ticker())
    task = asyncio.create_task(writer.run())
    start, cpu = time.perf_counter(), time.process_time()
    # Each record built as it is emitted, as the request path does (its few µs count).
    for n, made in enumerate(traffic(count)):
        writer.emit(made)
        if n % 100 == 99:
            await asyncio.sleep(0)  # the request path yields between requests
    while len(writer) or writer.written < count:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    stop = True
    task.cancel()
    await asyncio.wait({task, tick})
    await writer.close()
    await store.close()
    return count / elapsed, count / cpu, worst * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate, per_cpu, worst = await measure(sqlite_url(Path(tmp) / "bench.db"), args.records)
        print(f"sqlite:     {rate:9,.0f} records/s  {per_cpu:9,.0f} records/CPU-s  "
              f"longest loop stall {worst:6.1f} ms")
    base = os.environ.get("CERTGATE_TEST_DATABASE_URL")
    if base:
        url, name = await _create_pg_database(base)
        try:
            rate, per_cpu, worst = await measure(url, args.records)
            print(f"postgresql: {rate:9,.0f} records/s  {per_cpu:9,.0f} records/CPU-s  "
                  f"longest loop stall {worst:6.1f} ms")
        finally:
            await _drop_pg_database(base, name)


if __name__ == "__main__":
    asyncio.run(main())
