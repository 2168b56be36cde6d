"""``AuditStore.search_audit`` and ``audit_span`` on SQLite and PostgreSQL: each filter
alone, filters combined, the order and the limit; and the query plans use the
search indexes of migration 0005."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from gateway.audit.query import AuditQuery
from gateway.store.audit import search_statement
from gateway.store.store import Store
from tests.gateway.audit.helpers import NOW
from tests.gateway.audit.helpers import stored_row as row

ROWS = [
    row("gw1", 1, 0),
    row("gw1", 2, 10, user="bob", decision="deny", reason="no-matching-rule"),
    row("gw1", 3, 20, app="pbx", serial="5F3A"),
    row("gw2", 1, 20, type="login", reason="login-succeeded", decision="info"),
    row("gw2", 2, 30, user="bob", app="pbx", decision="deny", reason="certificate-revoked",
        serial="5F3A"),
    row("gw1", 4, 40, reference="3f2a9c01b7de"),
]


@pytest.fixture
async def filled(store: Store) -> Store:
    await store.append_audit([r for r in ROWS if r["node"] == "gw1"])
    await store.append_audit([r for r in ROWS if r["node"] == "gw2"])
    return store


def keys(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(r["node"], r["seq"]) for r in rows]


@pytest.mark.parametrize(("query", "expected"), [
    (AuditQuery(), [("gw1", 4), ("gw2", 2), ("gw1", 3), ("gw2", 1), ("gw1", 2), ("gw1", 1)]),
    (AuditQuery(user="bob"), [("gw2", 2), ("gw1", 2)]),
    (AuditQuery(app="pbx"), [("gw2", 2), ("gw1", 3)]),
    (AuditQuery(decision="deny"), [("gw2", 2), ("gw1", 2)]),
    (AuditQuery(type="login"), [("gw2", 1)]),
    (AuditQuery(serial="5F3A"), [("gw2", 2), ("gw1", 3)]),
    (AuditQuery(reference="3f2a9c01b7de"), [("gw1", 4)]),
    (AuditQuery(since=NOW + timedelta(minutes=20)), [("gw1", 4), ("gw2", 2), ("gw1", 3),
                                                     ("gw2", 1)]),
    (AuditQuery(until=NOW + timedelta(minutes=20)), [("gw1", 2), ("gw1", 1)]),
    (AuditQuery(user="bob", decision="deny", app="pbx"), [("gw2", 2)]),
    (AuditQuery(user="carol"), []),
    (AuditQuery(limit=2), [("gw1", 4), ("gw2", 2)]),
    (AuditQuery(oldest_first=True, limit=3), [("gw1", 1), ("gw1", 2), ("gw1", 3)]),
], ids=["all", "user", "app", "decision", "type", "serial", "reference", "since", "until",
        "combined", "none", "limit", "oldest-first"])
async def test_each_filter_finds_exactly_its_records(filled: Store, query: AuditQuery,
                                                     expected: list[tuple[str, int]]) -> None:
    assert keys(await filled.search_audit(query)) == expected


async def test_a_found_record_comes_back_as_it_was_stored(filled: Store) -> None:
    [found] = await filled.search_audit(AuditQuery(reference="3f2a9c01b7de"))
    assert found == ROWS[-1]


async def test_the_span_of_a_time_range_per_node(filled: Store) -> None:
    assert await filled.audit_span("gw1", None, None) == (1, 4)
    assert await filled.audit_span("gw1", NOW + timedelta(minutes=5),
                                   NOW + timedelta(minutes=40)) == (2, 3)
    assert await filled.audit_span("gw2", NOW + timedelta(minutes=31), None) is None


def literal(query: AuditQuery, conn: Any) -> str:
    """The SQL ``search_audit`` runs, with its values written in, to EXPLAIN it."""
    return str(search_statement(query).compile(conn.engine,
                                               compile_kwargs={"literal_binds": True}))


# Each filter's plan on SQLite names the index that serves it newest first.
@pytest.mark.parametrize(("query", "index"), [
    (AuditQuery(user="alice", since=NOW), "ix_audit_records_user_at"),
    (AuditQuery(app="wiki", since=NOW), "ix_audit_records_app_at"),
    (AuditQuery(serial="01AB"), "ix_audit_records_serial_at"),
    (AuditQuery(decision="deny", since=NOW), "ix_audit_records_decision_at"),
    (AuditQuery(type="login"), "ix_audit_records_type_at"),
    (AuditQuery(reference="3f2a9c01b7de"), "ix_audit_records_reference"),
    (AuditQuery(since=NOW), "ix_audit_records_at"),
    (AuditQuery(app="wiki", type="access", decision="allow", since=NOW),
     "ix_audit_records_app_at"),
    (AuditQuery(decision="deny", type="login"), "ix_audit_records_"),
])
async def test_sqlite_plans_use_the_search_indexes(tmp_path: Any, query: AuditQuery,
                                                   index: str) -> None:
    from gateway.store.db import sqlite_url

    store = await Store.open(sqlite_url(tmp_path / "plan.db"))
    try:
        async with store._engine.connect() as conn:
            plan = (await conn.execute(text(f"EXPLAIN QUERY PLAN {literal(query, conn)}"))).all()
        details = " | ".join(str(step[-1]) for step in plan)
        assert f"USING INDEX {index}" in details, details
        assert "SCAN audit_records" not in details, details
    finally:
        await store.close()


async def test_postgres_can_serve_each_filter_from_its_index(store: Store) -> None:
    if store._engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL plans")
    async with store._engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))  # an empty table: force the choice
        for query, index in [(AuditQuery(user="alice", since=NOW), "ix_audit_records_user_at"),
                             (AuditQuery(serial="01AB"), "ix_audit_records_serial_at"),
                             (AuditQuery(decision="deny", since=NOW),
                              "ix_audit_records_decision_at")]:
            plan = " ".join(r[0] for r in await conn.execute(
                text(f"EXPLAIN {literal(query, conn)}")))
            assert index in plan, plan
