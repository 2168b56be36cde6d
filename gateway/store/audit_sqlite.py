"""SQLite's audit appends: one long-lived connection, used only from its own thread.

The audit writer appends a batch every few hundred milliseconds under load. Through
the engine each batch opened a new SQLite connection (``NullPool``), so its page
cache started empty: every index page an insert touched was read back from the
file with a syscall, and the begin, insert, commit and close were each a hop to
aiosqlite's thread. ``SqliteAppender`` keeps one plain ``sqlite3`` connection open
(same pragmas as the engine's, a larger page cache) and runs each whole batch —
building the insert parameters, ``BEGIN IMMEDIATE``, the inserts, ``COMMIT`` — as
one call in its single worker thread: nothing of it on the loop.

Under load the inserts go ``ROWS_PER_STATEMENT`` (1024) rows to a statement, not
one row at a time (``executemany``, kept for the rest of a batch): the ``sqlite3``
module lets go of the GIL while SQLite works on a statement and must win it back
after, and while the event loop or the chaining thread is busy that takes up to the
interpreter's switch interval (5 ms). One row per statement left the inserts waiting
until the rest of the process was idle; 1024 rows per statement let SQLite's own work
(the larger part of an insert) run on the other core beside it.

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
from itertools import chain
from operator import itemgetter
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.chain import FIELDS
from gateway.store.db import safe_url, sqlite_pragmas
from gateway.store.errors import DatabaseUnavailableError

assert FIELDS[:3] == ("node", "seq", "at"), "the insert tuples are built in FIELDS order"
_rest = itemgetter(*FIELDS[3:])
# Built from the constant FIELDS only (no outside text): the values are bound parameters.
INSERT = "INSERT INTO audit_records ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(f'"{name}"' for name in FIELDS),  # "user" is a reserved word
    ", ".join("?" * len(FIELDS)))
# Rows per multi-row statement: 1024 * 23 parameters, under SQLite's limit of 32,766
# (an SQLite built with a lower limit gets fewer, see ``rows_per_statement``).
ROWS_PER_STATEMENT = 1024
# Pages kept in this connection's cache (negative: KiB): the index pages the next
# batch's inserts land on stay in memory between batches.
CACHE_KIB = 16_384


def sqlite_at(text: str) -> str:
    """``2026-11-24T12:00:00.123Z`` as SQLAlchemy stores a DateTime in SQLite."""
    return f"{text[:10]} {text[11:23]}000"


def insert_values(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The positional parameters of ``INSERT`` for chained rows."""
    return [(row["node"], row["seq"], sqlite_at(row["at"]), *_rest(row)) for row in rows]


def rows_per_statement(conn: sqlite3.Connection) -> int:
    """``ROWS_PER_STATEMENT``, or fewer when this SQLite allows fewer parameters."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(ROWS_PER_STATEMENT, limit // len(FIELDS)))


def insert_statement(rows: int) -> str:
    """``INSERT`` with ``rows`` rows of parameters."""
    return INSERT + f", ({', '.join('?' * len(FIELDS))})" * (rows - 1)


def insert_many(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]], per: int,
                statement: str) -> None:
    """Insert ``rows`` in order: ``statement`` (``insert_statement(per)``) for each
    whole group of ``per`` rows, then ``INSERT`` row by row for the rest."""
    values = insert_values(rows)
    whole = len(values) - len(values) % per
    for start in range(0, whole, per):
        conn.execute(statement, list(chain.from_iterable(values[start:start + per])))
    if whole < len(values):
        conn.executemany(INSERT, values[whole:])


class SqliteAppender:
    """Appends chained rows to ``audit_records`` of one SQLite database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self._where = safe_url(str(engine.url))
        self._conn: sqlite3.Connection | None = None
        self._per = 1
        self._statement = INSERT
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
            self._per = rows_per_statement(conn)
            self._statement = insert_statement(self._per)
        except BaseException:
            conn.close()
            raise
        return conn

    def _append(self, rows: Sequence[dict[str, Any]]) -> None:
        try:
            conn = self._conn = self._conn or self._open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                insert_many(conn, rows, self._per, self._statement)
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
