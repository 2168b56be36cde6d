"""``build_query``: what a reviewer types becomes the stored form, or one sentence
naming the option that is wrong; ``search_audit`` says when more records match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.audit.chain import format_at
from gateway.audit.query import AuditQuery
from gateway.manage.audit_search import build_query, search_audit
from gateway.manage.errors import ManageError
from gateway.store.store import Store
from tests.gateway.audit.helpers import NOW as RECORDED
from tests.gateway.audit.helpers import stored_row as row

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"cert": "5f:3a:01"}, AuditQuery(serial="5F3A01")),
    ({"cert": "0x1"}, AuditQuery(serial="01")),
    ({"ref": "3F2A9C01B7DE"}, AuditQuery(reference="3f2a9c01b7de")),
    ({"since": "24h", "until": "1h"},
     AuditQuery(since=NOW - timedelta(hours=24), until=NOW - timedelta(hours=1))),
    ({"since": "2026-11-01"}, AuditQuery(since=NOW.replace(day=1, hour=0))),
    ({"user": "alice", "app": "wiki", "decision": "deny", "type_": "session.end",
      "limit": 5, "oldest_first": True},
     AuditQuery(user="alice", app="wiki", decision="deny", type="session.end", limit=5,
                oldest_first=True)),
])
def test_typed_values_become_the_stored_form(kwargs: dict[str, object],
                                             expected: AuditQuery) -> None:
    assert build_query(now=NOW, **kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cert": "xyz"}, "--cert: 'xyz' is not a certificate serial"),
    ({"cert": "1" * 41}, "--cert: '1111"),
    ({"ref": "a b"}, "--ref 'a b' is not a reference"),
    ({"decision": "maybe"}, "--decision 'maybe' is not one of allow, deny, error, info"),
    ({"type_": "Robert'); DROP"}, "--type 'Robert'); DROP' is not a record type"),
    ({"user": ""}, "--user '' is empty"),
    ({"app": " wiki"}, "--app ' wiki' is empty, too long or has surrounding spaces"),
    ({"since": "yesterday"}, "--since 'yesterday' is neither a duration"),
    ({"until": "soon"}, "--until 'soon' is neither a duration"),
    ({"since": "1h", "until": "2h"}, "is not after --since"),
    ({"limit": 0}, "--limit 0 is outside 1 to 1,000,000"),
])
def test_bad_values_are_refused_with_the_option_named(kwargs: dict[str, object],
                                                      message: str) -> None:
    with pytest.raises(ManageError) as caught:
        build_query(now=NOW, **kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)


async def test_more_is_said_when_the_limit_cuts(store: Store) -> None:
    await store.append_audit([row("gw1", n, n) for n in range(1, 6)])
    result = await search_audit(store, AuditQuery(limit=3))
    assert [r["seq"] for r in result.records] == [5, 4, 3] and result.more
    result = await search_audit(store, AuditQuery(limit=5))
    assert len(result.records) == 5 and not result.more
    assert result.records[0]["at"] == format_at(RECORDED + timedelta(minutes=5))
