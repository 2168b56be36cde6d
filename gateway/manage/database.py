"""Database use-cases: apply migrations explicitly, and move an install to another
database (SQLite to PostgreSQL when a company grows past one node).

``move_to`` copies every table of the schema, in foreign-key order and in
batches, into a target that has been migrated and holds no data yet, in one
transaction: a failure leaves the target empty, never half-filled. PostgreSQL's
id sequences are then moved past the copied ids (so new certificates, events and
CRL numbers keep increasing), and the copy is verified table by table: the same
number of rows and the same SHA-256 over every row in primary-key order. The
source is only read. The gateway must be stopped meanwhile (anything it writes
during the copy would stay behind).

Takes plain values and returns records. Never prompts, prints or exits.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, Table, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.manage.errors import ManageError
from gateway.store import tables as t
from gateway.store.db import make_engine, migrate_async, safe_url

BATCH = 1000


@dataclass(frozen=True)
class TableCopy:
    name: str
    rows: int
    digest: str  # SHA-256 over the rows in primary-key order, the same on both sides


async def upgrade(url: str) -> str:
    """Bring the schema at ``url`` to the newest revision; the revision it is at now."""
    await migrate_async(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SELECT version_num FROM alembic_version"))
                        ).scalar_one())
    finally:
        await engine.dispose()


def _ordered(table: Table) -> Any:
    return select(table).order_by(*table.primary_key.columns)


def _canonical(value: Any) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return repr(value)


async def _digest(conn: AsyncConnection, table: Table) -> TableCopy:
    digest, rows = hashlib.sha256(), 0
    result = await conn.stream(_ordered(table))
    async for row in result:
        digest.update("\x1f".join(_canonical(v) for v in row).encode() + b"\x1e")
        rows += 1
    return TableCopy(table.name, rows, digest.hexdigest())


async def _has_data(conn: AsyncConnection) -> list[str]:
    """The schema's tables that exist at ``conn`` and hold rows."""
    present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    names = []
    for table in t.metadata.sorted_tables:
        if table.name in present and (await conn.execute(
                select(func.count()).select_from(table))).scalar_one():
            names.append(table.name)
    return names


async def tables_with_data(url: str) -> list[str]:
    """The certgate tables at ``url`` that hold rows: empty for a new, empty database.

    Only reads (no migration). Raises ``ManageError`` when the database can't be reached.
    """
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await _has_data(conn)
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise ManageError(f"cannot reach the database {safe_url(url)}: {reason}") from None
    finally:
        await engine.dispose()


async def _copy(source: AsyncConnection, target: AsyncConnection, table: Table) -> None:
    result = await source.stream(_ordered(table))
    async for batch in result.mappings().partitions(BATCH):
        await target.execute(insert(table), [dict(row) for row in batch])


async def _advance_sequences(conn: AsyncConnection, tables: Iterable[Table]) -> None:
    """PostgreSQL: next ids continue after the copied ones (SQLite needs nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or not isinstance(columns[0].type, Integer):
            continue
        highest = (await conn.execute(select(func.max(columns[0])))).scalar() or 0
        # NULL (no sequence: ids the application assigns, like CRL numbers) is a no-op.
        await conn.execute(text("SELECT setval(pg_get_serial_sequence(:table, :column), "
                                ":next, false)"),
                           {"table": table.name, "column": columns[0].name,
                            "next": int(highest) + 1})


async def move_to(source_url: str, target_url: str) -> list[TableCopy]:
    """Copy every table from ``source_url`` into an empty ``target_url`` and verify it."""
    if make_url(source_url) == make_url(target_url):
        raise ManageError("the target is the database already in use; name another one")
    await migrate_async(source_url)  # both at the same, newest schema
    await migrate_async(target_url)
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        return await _move(source, target, safe_url(target_url))
    finally:
        await source.dispose()
        await target.dispose()


async def _move(source: AsyncEngine, target: AsyncEngine, shown: str) -> list[TableCopy]:
    tables = t.metadata.sorted_tables
    async with source.connect() as src:
        async with target.begin() as dst:
            filled = await _has_data(dst)
            if filled:
                raise ManageError(f"{shown} already holds data (tables: {', '.join(filled)}); "
                                  "move into a new, empty database")
            for table in tables:
                await _copy(src, dst, table)
            await _advance_sequences(dst, tables)
        copied = [await _digest(src, table) for table in tables]
    async with target.connect() as dst:
        arrived = [await _digest(dst, table) for table in tables]
    for want, got in zip(copied, arrived, strict=True):
        if want != got:
            raise ManageError(f"the copy of table {want.name} differs from the original "
                              f"({want.rows} rows there, {got.rows} here); the original is "
                              "unchanged and still in use")
    return copied


_DATABASE_LINE = re.compile(r"^database_url:.*$", re.MULTILINE)


def point_config(config_path: Path, url: str) -> None:
    """Set ``database_url`` in the config file, keeping every other line (and its
    comments) as it was; written to a temporary file and renamed into place."""
    old = config_path.read_text(encoding="utf-8")
    line = f"database_url: {url}"
    if _DATABASE_LINE.search(old):
        new = _DATABASE_LINE.sub(lambda _: line, old, count=1)
    else:
        new = old + ("" if old.endswith("\n") or not old else "\n") + line + "\n"
    tmp = config_path.with_name(f".{config_path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.chmod(tmp, config_path.stat().st_mode & 0o777)
    tmp.replace(config_path)
