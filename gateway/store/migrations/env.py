"""Alembic environment: runs the revisions through an async engine, one migrating
process at a time.

Invoked only by ``gateway.store.db.migrate``; never on import. Several nodes (or
commands) may migrate one fresh database at the same moment: each takes a database
lock before Alembic reads the current revision, so the first applies every revision
in one transaction and the others wait, then find the head and do nothing. A failed
run rolls back whole: no revision is ever half-applied.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gateway.store.db import SQLITE_BUSY_TIMEOUT_MS
from gateway.store.tables import metadata

# PostgreSQL advisory-lock key held by a migrating transaction: b"certgate" read as
# a big-endian 64-bit integer. Fixed forever: every certgate version must use it.
MIGRATION_LOCK_KEY = 0x6365727467617465


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts no transaction before DDL (so a
    # failed revision would stay half-applied) and a deferred one otherwise;
    # _sqlite_begin emits the BEGIN instead. busy_timeout makes a second migrating
    # process wait for the first's write lock rather than fail at once.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock now, before Alembic reads alembic_version.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # transactional_ddl: SQLite runs DDL in transactions too (with the BEGIN above),
    # so every revision goes in the one transaction, as on PostgreSQL.
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=sqlite, transactional_ddl=True)
    with context.begin_transaction():
        if not sqlite:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "migrate() sets sqlalchemy.url"
    engine = create_async_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_main())
