"""SQLite's audit appends through ``SqliteAppender``: one connection kept for every batch,
a batch all or none, a duplicate (node, seq) as SQLAlchemy's ``IntegrityError``, and a
database that refuses writes as ``DatabaseUnavailableError``, after which the next
batch opens the connection again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from gateway.audit.query import AuditQuery
from gateway.store.audit_sqlite import (
    ROWS_PER_STATEMENT,
    insert_many,
    insert_statement,
    rows_per_statement,
)
from gateway.store.db import sqlite_url
from gateway.store.errors import DatabaseUnavailableError
from gateway.store.store import Store
from tests.gateway.audit.helpers import immutable
from tests.gateway.audit.helpers import stored_row as row


async def seqs(store: Store, node: str) -> list[int]:
    return [r["seq"] for page in [p async for p in store.audit_rows(node)] for r in page]


async def test_batches_share_one_connection_and_come_back_in_order(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path / "a.db"))
    try:
        await store.append_audit([row("gw1", 1, 0), row("gw1", 2, 1)])
        appender = store._sqlite_appender
        assert appender is not None
        connection = appender._conn
        await store.append_audit([row("gw1", 3, 2, user="bob")])
        assert store._sqlite_appender is appender and appender._conn is connection
        assert await seqs(store, "gw1") == [1, 2, 3]
        assert await store.audit_head("gw1") == (3, "1" * 64)
        [found] = await store.search_audit(AuditQuery(user="bob"))
        assert found == row("gw1", 3, 2, user="bob")  # ``at`` stored as every DateTime
    finally:
        await store.close()
    assert store._sqlite_appender is None


async def test_a_duplicate_seq_is_an_integrity_error_and_nothing_of_its_batch_is_kept(
        tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path / "a.db"))
    try:
        await store.append_audit([row("gw1", 1, 0), row("gw1", 2, 1)])
        with pytest.raises(IntegrityError):
            await store.append_audit([row("gw1", 3, 2), row("gw1", 2, 3)])
        assert await seqs(store, "gw1") == [1, 2]
        await store.append_audit([row("gw1", 3, 2)])  # the connection still works
        assert await seqs(store, "gw1") == [1, 2, 3]
    finally:
        await store.close()


async def test_a_database_that_refuses_writes_is_unavailable_until_it_takes_them(
        tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = await Store.open(sqlite_url(path))
    try:
        with immutable(path):
            with pytest.raises(DatabaseUnavailableError) as refused:
                await store.append_audit([row("gw1", 1, 0)])
            assert str(refused.value) == (
                f"cannot write to the database at {sqlite_url(path)}: "
                "attempt to write a readonly database")
            assert await seqs(store, "gw1") == []
        await store.append_audit([row("gw1", 1, 0)])  # reopened: writes again
        assert await seqs(store, "gw1") == [1]
    finally:
        await store.close()


async def test_a_batch_of_whole_statements_and_a_rest_is_stored_in_order(
        tmp_path: Path) -> None:
    # 2 * ROWS_PER_STATEMENT rows by multi-row statements, then 37 one by one.
    count = 2 * ROWS_PER_STATEMENT + 37
    store = await Store.open(sqlite_url(tmp_path / "a.db"))
    try:
        await store.append_audit([row("gw1", n, n, user=f"u{n}") for n in range(1, count + 1)])
        assert await seqs(store, "gw1") == list(range(1, count + 1))
        [found] = await store.search_audit(AuditQuery(user=f"u{ROWS_PER_STATEMENT + 1}"))
        assert found == row("gw1", ROWS_PER_STATEMENT + 1, ROWS_PER_STATEMENT + 1,
                            user=f"u{ROWS_PER_STATEMENT + 1}")
        with pytest.raises(IntegrityError):  # a duplicate in a whole statement: none kept
            await store.append_audit([row("gw1", n, n) for n in range(count + 1, count + 300)]
                                     + [row("gw1", 5, 5)])
        assert await seqs(store, "gw1") == list(range(1, count + 1))
    finally:
        await store.close()


async def test_an_sqlite_allowing_fewer_parameters_gets_fewer_rows_per_statement(
        tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path / "a.db"))
    await store.close()
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    try:
        assert rows_per_statement(conn) == ROWS_PER_STATEMENT
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # 4 rows of 23
        per = rows_per_statement(conn)
        assert per == 4
        insert_many(conn, [row("gw1", n, n) for n in range(1, 11)], per, insert_statement(per))
        assert [r[0] for r in conn.execute("SELECT seq FROM audit_records ORDER BY seq")] \
            == list(range(1, 11))
    finally:
        conn.close()
