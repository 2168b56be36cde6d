"""The change follower on a real SQLite store (and PostgreSQL when there is one):
mutations reach the index, an outage keeps the index as it was, and the follower
catches up once the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.auth.sessions import SessionIndex, SessionLimits
from gateway.identity.follower import AppliedChange, EventFollower
from gateway.identity.index import CertificateIndex, Identity
from gateway.store import tables as t
from gateway.store.db import sqlite_url
from gateway.store.errors import DatabaseUnavailableError
from gateway.store.notify import ChangeListener
from gateway.store.records import CertRecord, CertStatus, SessionRecord
from gateway.store.store import Store
from policies.model import Reason
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database

NOW = datetime.now(UTC).replace(microsecond=0)
ALICE_FP, BOB_FP = "a1" * 32, "b0" * 32


def cert(serial: int, user: str, fp: str) -> CertRecord:
    return CertRecord(serial=serial, user=user, fingerprint=fp, subject=f"CN={user}",
                      not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30),
                      status=CertStatus.ACTIVE, issued_at=NOW, pem="-----BEGIN CERTIFICATE-----")


@dataclass
class Feed:
    store: Store
    index: CertificateIndex
    follower: EventFollower
    db_dir: Path
    changes: list[tuple[set[str], set[str]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def feed(tmp_path: Path) -> AsyncIterator[Feed]:
    db_dir = tmp_path / "db"  # a directory of its own, so the test can take it away
    store = await Store.open(sqlite_url(db_dir / "certgate.db"))
    await store.add_user("alice", groups=["staff"])
    await store.add_user("bob", groups=["sales"])
    await store.add_certificate(cert(0xA1, "alice", ALICE_FP))
    snapshot = await store.identity_snapshot()
    index = CertificateIndex.from_snapshot(snapshot)
    holder: list[Feed] = []

    async def on_change(fps: set[str], kinds: set[str]) -> None:
        holder[0].changes.append((fps, kinds))
        holder[0].changed.set()

    follower = EventFollower(store, index, after_id=snapshot.last_event_id, interval=0.01,
                             on_change=on_change)
    holder.append(Feed(store, index, follower, db_dir))
    try:
        yield holder[0]
    finally:
        await store.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the follower's task run until ``condition`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(follower: EventFollower) -> AsyncIterator[None]:
    task = asyncio.create_task(follower.run())
    try:
        yield
        assert not task.done(), "run() ended on its own"  # it must survive any outage
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def status(feed: Feed, fp: str) -> Identity | Reason:
    return feed.index.resolve(fp, datetime.now(UTC))


def status_in(index: CertificateIndex, fp: str) -> Identity | Reason:
    return index.resolve(fp, datetime.now(UTC))


async def test_poll_once_applies_each_kind_of_event(feed: Feed) -> None:
    assert isinstance(status(feed, ALICE_FP), Identity)
    assert await feed.follower.poll_once() == 0  # nothing after the snapshot
    assert feed.changes == []

    await feed.store.add_certificate(cert(0xB0, "bob", BOB_FP))
    assert status(feed, BOB_FP) is Reason.UNKNOWN_CERTIFICATE  # not until the poll
    assert await feed.follower.poll_once() == 1
    bob = status(feed, BOB_FP)
    assert isinstance(bob, Identity) and bob.groups == frozenset({"sales"})
    assert feed.changes[-1] == ({BOB_FP}, {"cert"})

    await feed.store.set_user_groups("bob", ["sales", "staff"])
    await feed.store.set_user_enabled("alice", False)
    assert await feed.follower.poll_once() == 2
    assert status(feed, ALICE_FP) is Reason.USER_DISABLED
    bob = status(feed, BOB_FP)
    assert isinstance(bob, Identity) and bob.groups == frozenset({"sales", "staff"})
    assert feed.changes[-1] == ({ALICE_FP, BOB_FP}, {"user"})

    await feed.store.revoke_certificate(0xB0, reason="keyCompromise", at=NOW)
    await feed.follower.poll_once()
    assert status(feed, BOB_FP) is Reason.CERTIFICATE_REVOKED
    assert feed.follower.last_event_id == (await feed.store.identity_snapshot()).last_event_id


async def test_only_changes_that_take_access_away_are_reported_as_applied(feed: Feed) -> None:
    applied: list[AppliedChange] = []
    sessions = SessionIndex(SessionLimits())
    follower = EventFollower(feed.store, feed.index, after_id=feed.follower.last_event_id,
                             sessions=sessions, on_applied=applied.append)
    session = SessionRecord("5e" * 32, "alice", ALICE_FP, NOW, NOW, NOW, ("cert", "totp"))
    await feed.store.create_session(session)
    await feed.store.add_certificate(cert(0xB0, "bob", BOB_FP))
    await follower.poll_once()
    assert applied == [] and len(sessions) == 1  # a new session and a new certificate

    before = datetime.now(UTC)
    await feed.store.suspend_certificate(0xA1, at=NOW)  # ends alice's session with it
    await follower.poll_once()
    after = datetime.now(UTC)
    assert [(a.kind, a.key, a.change, a.user) for a in applied] == [
        ("cert", "A1", "suspended", "alice"), ("session", "5e" * 8, "ended", "alice")]
    for change in applied:
        assert change.created_at <= change.applied_at
        assert before <= change.applied_at <= after and change.lag_ms >= 0

    applied.clear()
    await feed.store.resume_certificate(0xA1)
    await feed.store.set_user_groups("bob", ["staff"])
    await follower.poll_once()
    assert applied == []  # access granted, not taken away
    await feed.store.set_user_enabled("bob", False)
    await feed.store.revoke_certificate(0xB0, reason="keyCompromise", at=NOW)
    await follower.poll_once()
    assert [(a.kind, a.key, a.change) for a in applied] == [
        ("user", "bob", "disabled"), ("cert", "B0", "revoked")]


async def test_running_follower_applies_a_revocation(feed: Feed) -> None:
    async with running(feed.follower):
        await feed.store.revoke_certificate(0xA1, reason="keyCompromise", at=NOW)
        async with asyncio.timeout(5):
            await feed.changed.wait()
        assert status(feed, ALICE_FP) is Reason.CERTIFICATE_REVOKED
        assert feed.changes == [({ALICE_FP}, {"cert"})]
        assert feed.follower.healthy


async def test_outage_keeps_the_index_and_the_follower_catches_up(feed: Feed) -> None:
    await feed.store.suspend_certificate(0xA1, at=NOW)
    await feed.follower.poll_once()
    assert status(feed, ALICE_FP) is Reason.CERTIFICATE_SUSPENDED
    away = feed.db_dir.with_name("db-away")

    async with running(feed.follower):
        feed.db_dir.rename(away)  # the database is gone for the follower
        await until(lambda: not feed.follower.healthy)
        with pytest.raises(DatabaseUnavailableError):
            await feed.store.events_after(0)
        # Serving from memory: the suspension holds, nothing is forgotten.
        assert status(feed, ALICE_FP) is Reason.CERTIFICATE_SUSPENDED
        assert len(feed.index) == 1

        # An admin changes things meanwhile (through another path to the same file).
        other = await Store.open(sqlite_url(away / "certgate.db"), migrate=False)
        try:
            await other.resume_certificate(0xA1)
            await other.add_certificate(cert(0xB0, "bob", BOB_FP))
        finally:
            await other.close()
        assert status(feed, ALICE_FP) is Reason.CERTIFICATE_SUSPENDED  # still unseen

        away.rename(feed.db_dir)  # back
        await until(lambda: feed.follower.healthy and isinstance(status(feed, BOB_FP), Identity))
        assert isinstance(status(feed, ALICE_FP), Identity)
        assert len(feed.index) == 2




async def test_postgresql_refusing_connections_is_survived_and_caught_up() -> None:
    """Issue 11's operator experiment: the database refuses connections (its
    backends terminated) and comes back. asyncpg's refusal is not a StoreError;
    the follower must survive it, say so, and apply the revocation made after."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _create_pg_database(base)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    store = await Store.open(url)
    try:
        await store.add_user("alice", groups=["staff"])
        await store.add_certificate(cert(0xA1, "alice", ALICE_FP))
        snapshot = await store.identity_snapshot()
        index = CertificateIndex.from_snapshot(snapshot)
        follower = EventFollower(store, index, after_id=snapshot.last_event_id, interval=0.01)
        async with running(follower):
            await until(lambda: follower.health.last_success is not None)
            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = :name"), {"name": name})
            await until(lambda: not follower.healthy, timeout=10)
            assert follower.health.running and follower.health.problem() is not None
            assert isinstance(index.resolve(ALICE_FP, datetime.now(UTC)), Identity)

            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            other = await Store.open(url, migrate=False)
            try:
                await other.revoke_certificate(0xA1, reason="keyCompromise", at=NOW)
            finally:
                await other.close()
            await until(lambda: follower.healthy and index.resolve(ALICE_FP, datetime.now(UTC))
                        is Reason.CERTIFICATE_REVOKED, timeout=10)
    finally:
        await store.close()
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        await admin.dispose()
        await _drop_pg_database(base, name)


@contextlib.asynccontextmanager
async def pg_feed() -> AsyncIterator[tuple[str, str, Store]]:
    """A fresh PostgreSQL database with alice's certificate; skips without a server."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _create_pg_database(base)
    store = await Store.open(url)
    try:
        await store.add_user("alice", groups=["staff"])
        await store.add_certificate(cert(0xA1, "alice", ALICE_FP))
        yield url, name, store
    finally:
        await store.close()
        await _drop_pg_database(base, name)


async def test_an_event_committed_out_of_order_is_not_skipped() -> None:
    """Two interleaved transactions: the one holding the lower id commits last."""
    async with pg_feed() as (_, _, store):
        snapshot = await store.identity_snapshot()
        index = CertificateIndex.from_snapshot(snapshot)
        follower = EventFollower(store, index, after_id=snapshot.last_event_id)
        engine = store._engine
        async with engine.connect() as slow, engine.connect() as fast:
            await slow.begin()
            await fast.begin()
            await slow.execute(insert(t.events).values(kind="user", key="alice",
                                                       created_at=NOW))  # takes id n
            await slow.execute(update(t.users).where(t.users.c.name == "alice")
                               .values(enabled=False))
            await fast.execute(insert(t.events).values(kind="crl", key="7",
                                                       created_at=NOW))  # takes id n+1
            await fast.commit()
            assert await follower.poll_once() == 1  # sees n+1; n is not committed yet
            assert follower.gaps == {follower.last_event_id - 1}
            assert isinstance(status_in(index, ALICE_FP), Identity)
            await slow.commit()
        assert await follower.poll_once() == 1  # the late event, not skipped
        assert follower.gaps == frozenset()
        assert status_in(index, ALICE_FP) is Reason.USER_DISABLED


async def test_a_snapshot_names_ids_it_could_not_see() -> None:
    async with pg_feed() as (_, _, store):
        async with store._engine.connect() as slow:
            await slow.begin()
            await slow.execute(insert(t.events).values(kind="user", key="alice",
                                                       created_at=NOW))
            await slow.execute(update(t.users).where(t.users.c.name == "alice")
                               .values(enabled=False))
            await store.add_user("bob", groups=["sales"])  # commits id n+1
            snapshot = await store.identity_snapshot()
            await slow.commit()
        assert snapshot.gaps == (snapshot.last_event_id - 1,)
        index = CertificateIndex.from_snapshot(snapshot)
        follower = EventFollower(store, index, after_id=snapshot.last_event_id,
                                 gaps=snapshot.gaps)
        assert await follower.poll_once() == 1
        assert status_in(index, ALICE_FP) is Reason.USER_DISABLED


async def test_notify_wakes_the_follower_and_a_dropped_listener_reconnects() -> None:
    async with pg_feed() as (url, name, store):
        snapshot = await store.identity_snapshot()
        index = CertificateIndex.from_snapshot(snapshot)
        # Catch-up every 60 s: within a second only the notification can do it.
        follower = EventFollower(store, index, after_id=snapshot.last_event_id,
                                 interval=0.25, catch_up=60)
        listener = ChangeListener(url, follower.wake.set)
        follower.listening = listener.listening
        listen_task = asyncio.create_task(listener.run())
        try:
            await until(listener.listening)
            async with running(follower):
                await until(lambda: follower.health.last_success is not None)
                await store.suspend_certificate(0xA1, at=NOW)
                await until(lambda: status_in(index, ALICE_FP)
                            is Reason.CERTIFICATE_SUSPENDED, timeout=1.0)

                admin = create_async_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")
                try:
                    async with admin.connect() as conn:
                        await conn.execute(text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :name AND query LIKE 'LISTEN%'"), {"name": name})
                finally:
                    await admin.dispose()
                await until(lambda: not listener.listening())
                await until(listener.listening, timeout=15)  # reconnected by its loop
                await store.resume_certificate(0xA1)
                await until(lambda: isinstance(status_in(index, ALICE_FP), Identity),
                            timeout=1.0)
        finally:
            listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listen_task
