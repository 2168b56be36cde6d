"""Two nodes' session indexes on one store: a session used only on node B does not
idle out on node A (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.auth.activity import SessionActivity, share_interval
from gateway.auth.sessions import SessionIndex, SessionLimits, new_session_secret
from gateway.store.db import sqlite_url
from gateway.store.errors import DatabaseUnavailableError
from gateway.store.records import SessionRecord
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LIMITS = SessionLimits(idle=timedelta(minutes=30), absolute=timedelta(hours=8))


def test_interval_is_a_tenth_of_the_idle_timeout_within_1_to_30_s() -> None:
    assert [share_interval(timedelta(seconds=s)) for s in (5, 100, 3600)] == [1.0, 10.0, 30.0]


async def test_a_session_used_only_on_b_stays_alive_on_a(store: Store) -> None:
    await store.add_user("alice")
    value, id_hash = new_session_secret()
    session = SessionRecord(id_hash, "alice", "fp-a", NOW, NOW, NOW, ("mtls", "pwd", "otp"))
    await store.create_session(session)
    node_a, node_b = SessionIndex(LIMITS, [session]), SessionIndex(LIMITS, [session])
    share_a = SessionActivity(store, node_a, now=NOW, interval=30)
    share_b = SessionActivity(store, node_b, now=NOW, interval=30)

    # Alice works on node B for 50 minutes; each node shares every 30 s.
    t = NOW
    for minute in range(1, 51):
        t = NOW + timedelta(minutes=minute)
        assert node_b.lookup(value, "fp-a", t) is not None
        await share_b.round_(t + timedelta(seconds=15))
        await share_a.round_(t + timedelta(seconds=30))
    # Node A never served her, yet knows she was active a minute ago.
    assert node_a.lookup(value, "fp-a", t + timedelta(minutes=1)) is not None
    stored = await store.get_session(id_hash)
    assert stored is not None and stored.last_seen == t

    # Without the sharing, the same session would have been idle on A.
    alone = SessionIndex(LIMITS, [session])
    assert alone.lookup(value, "fp-a", t + timedelta(minutes=1)) is None


async def test_touches_of_a_failed_round_are_written_by_the_next(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"  # a directory of its own, so the test can take it away
    store = await Store.open(sqlite_url(db_dir / "certgate.db"))
    try:
        await store.add_user("alice")
        value, id_hash = new_session_secret()
        session = SessionRecord(id_hash, "alice", "fp-a", NOW, NOW, NOW, ("mtls",))
        await store.create_session(session)
        node = SessionIndex(LIMITS, [session])
        share = SessionActivity(store, node, now=NOW, interval=30)
        used = NOW + timedelta(minutes=3)
        assert node.lookup(value, "fp-a", used) is not None
        db_dir.rename(tmp_path / "away")
        with pytest.raises(DatabaseUnavailableError):
            await share.round_(used)
        (tmp_path / "away").rename(db_dir)
        await share.round_(used + timedelta(seconds=30))
        stored = await store.get_session(id_hash)
        assert stored is not None and stored.last_seen == used
    finally:
        await store.close()
