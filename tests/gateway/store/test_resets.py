"""Password resets in the store: one open reset per user, setting one clears the
password and ends the sessions, spending one is single-use even when requests race,
and an expired one can't be spent (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.store.records import SessionRecord
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=24)


async def test_a_reset_replaces_the_last_clears_the_password_and_ends_sessions(
        store: Store) -> None:
    await store.add_user("dave", password_hash="old-hash")
    await store.create_session(SessionRecord("a" * 64, "dave", "f" * 64, NOW, NOW, NOW,
                                             ("mtls", "pwd", "otp")))
    ended = await store.set_password_reset("dave", "hash-1", created_by="root",
                                           expires_at=LATER, now=NOW)
    assert ended == ["a" * 64]
    assert (await store.get_user("dave")).password_hash is None
    await store.set_password_reset("dave", "hash-2", created_by="console:alice",
                                   expires_at=LATER, now=NOW)
    found = await store.open_password_reset("dave", NOW)
    assert found is not None and (found.code_hash, found.created_by) == ("hash-2",
                                                                         "console:alice")
    assert not await store.complete_password_reset("dave", "hash-1", "new", now=NOW)
    assert await store.open_password_reset("nobody", NOW) is None


async def test_a_reset_is_spent_once_when_requests_race(store: Store) -> None:
    await store.add_user("dave")
    await store.set_password_reset("dave", "hash-1", created_by="root", expires_at=LATER,
                                   now=NOW)
    results = await asyncio.gather(*(store.complete_password_reset(
        "dave", "hash-1", f"pw-{i}", now=NOW) for i in range(5)))
    assert sum(results) == 1
    winner = results.index(True)
    assert (await store.get_user("dave")).password_hash == f"pw-{winner}"
    assert await store.open_password_reset("dave", NOW) is None


async def test_an_expired_reset_is_not_open_and_can_not_be_spent(store: Store) -> None:
    await store.add_user("dave")
    await store.set_password_reset("dave", "hash-1", created_by="root", expires_at=LATER,
                                   now=NOW)
    assert await store.open_password_reset("dave", LATER) is None
    assert not await store.complete_password_reset("dave", "hash-1", "pw", now=LATER)
    assert (await store.get_user("dave")).password_hash is None
    assert await store.cancel_password_reset("dave")
    assert not await store.cancel_password_reset("dave")


async def test_every_open_reset_at_once(store: Store) -> None:
    """The console's users page: each user's open reset in one read; a spent or expired
    one, or none at all, is absent."""
    for name in ("ann", "ben", "cid", "dot"):
        await store.add_user(name)
    await store.set_password_reset("ann", "hash-a", created_by="root", expires_at=LATER,
                                   now=NOW)
    await store.set_password_reset("ben", "hash-b", created_by="console:alice",
                                   expires_at=NOW + timedelta(hours=1), now=NOW)
    await store.set_password_reset("cid", "hash-c", created_by="root", expires_at=LATER,
                                   now=NOW)
    assert await store.complete_password_reset("cid", "hash-c", "pw", now=NOW)
    found = await store.open_password_resets(NOW)
    assert {name: (r.code_hash, r.created_by) for name, r in found.items()} == {
        "ann": ("hash-a", "root"), "ben": ("hash-b", "console:alice")}
    assert found["ann"] == await store.open_password_reset("ann", NOW)
    assert list(await store.open_password_resets(NOW + timedelta(hours=2))) == ["ann"]
