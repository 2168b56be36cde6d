"""SQLite's audit appends: one long-lived connection, used only from its own thread.

The audit writer appends a batch every few hundred milliseconds under load. Through
the engine each batch opened a new SQLite connection (``NullPool``), so its page
cache started empty: every index page an insert touched was read back from the
file with a syscall, and the begin, insert, commit and close were each a hop to
aiosqlite's thread. ``SqliteAppender`` keeps one plain ``sqlite3`` connection open
(same pragmas as the engine's, a larger page cache) and runs each whole batch —
building the insert tuples, ``BEGIN IMMEDIATE``, one prepared ``executemany``,
``COMMIT`` — as one call in its single worker thread: nothing of it on the loop.

One transaction per batch, all rows or none, as before. Errors come out as the
engine's would: a duplicate (node, seq) as SQLAlchemy's ``IntegrityError`` (a CLI
that lost a race re-reads the head), anything else as ``DatabaseUnavailableError``
with one sentence; the connection is then closed and reopened by the next batch.
Must not read, hash or check records: ``gateway.store.audit`` and the chain do.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.chain import FIELDS
from gateway.store.db import safe_url, sqlite_pragmas
from gateway.store.errors import DatabaseUnavailableError

assert FIELDS[:3] == ("node", "seq", "at"), "the insert tuples are built in FIELDS order"
_REST = FIELDS[3:]
# Built from the constant FIELDS only (no outside text): the values are bound parameters.
INSERT = "INSERT INTO audit_records ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(f'"{name}"' for name in FIELDS),  # "user" is a reserved word
    ", ".join("?" * len(FIELDS)))
# Pages kept in this connection's cache (negative: KiB): the index pages the next
# batch's inserts land on stay in memory between batches.
CACHE_KIB = 16_384


def sqlite_at(text: str) -> str:
    """``2026-11-24T12:00:00.123Z`` as SQLAlchemy stores a DateTime in SQLite."""
    return f"{text[:10]} {text[11:23]}000"


def insert_values(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The positional parameters of ``INSERT`` for chained rows."""
    return [(row["node"], row["seq"], sqlite_at(row["at"]), *[row[n] for n in _REST])
            for row in rows]


class SqliteAppender:
    """Appends chained rows to ``audit_records`` of one SQLite database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self._where = safe_url(str(engine.url))
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="certgate-audit-db")

    async def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction, in the appender's thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._append, rows)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _open(self) -> sqlite3.Connection:
        # As SQLAlchemy would connect (path or URI, its options); autocommit, so the
        # transaction is exactly the BEGIN IMMEDIATE ... COMMIT of ``_append``.
        connect = cast(Callable[..., sqlite3.Connection], sqlite3.connect)
        conn = connect(*self._args, **{**self._kwargs, "isolation_level": None})
        try:
            sqlite_pragmas(conn, None)
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _append(self, rows: Sequence[dict[str, Any]]) -> None:
        values = insert_values(rows)
        try:
            conn = self._conn = self._conn or self._open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(INSERT, values)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise IntegrityError("INSERT INTO audit_records", None, exc) from exc
        except sqlite3.Error as exc:
            self._close()
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseUnavailableError(
                f"cannot write to the database at {self._where}: {text}") from None

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
