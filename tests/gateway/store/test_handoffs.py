"""Hand-off tokens in the store: single use across nodes, bound to one certificate and
one host, the new session copying its origin, and sessions ending with their origin
(SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gateway.store.db import make_engine
from gateway.store.records import HandoffRefusal, SessionRecord
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LOGIN = NOW - timedelta(hours=2)
ORIGIN = SessionRecord("a" * 64, "alice", "fa", LOGIN, NOW, LOGIN + timedelta(minutes=1),
                       ("mtls", "pwd", "otp"), host="wiki.test")


async def _with_token(store: Store, token: str = "t" * 64, *, target: str = "pbx.test") -> None:
    await store.add_user("alice")
    await store.create_session(ORIGIN)
    await store.create_handoff(token, fingerprint="fa", target_host=target,
                               origin=ORIGIN.id_hash, expires_at=NOW + timedelta(seconds=60),
                               now=NOW)


async def test_session_remembers_its_host_and_origin(store: Store) -> None:
    await store.add_user("alice")
    await store.create_session(ORIGIN)
    assert await store.get_session(ORIGIN.id_hash) == ORIGIN
    legacy = SessionRecord("b" * 64, "alice", "fa", NOW, NOW, NOW, ("mtls",))
    await store.create_session(legacy)  # callers from before hand-offs keep working
    got = await store.get_session(legacy.id_hash)
    assert got is not None and (got.host, got.origin) == (None, None)
    assert (await store.identity_snapshot()).sessions == (ORIGIN, legacy)


async def test_a_token_starts_one_session_copying_its_origin(store: Store) -> None:
    await _with_token(store)
    before = (await store.identity_snapshot()).last_event_id
    session = await store.redeem_handoff("t" * 64, fingerprint="fa", host="pbx.test",
                                         now=NOW + timedelta(seconds=5), new_id_hash="c" * 64)
    assert session == SessionRecord("c" * 64, "alice", "fa", LOGIN, NOW + timedelta(seconds=5),
                                    ORIGIN.mfa_at, ORIGIN.factors, host="pbx.test",
                                    origin=ORIGIN.id_hash)
    assert await store.get_session("c" * 64) == session
    assert [(e.kind, e.key) for e in await store.events_after(before)] == [("session", "c" * 64)]
    again = await store.redeem_handoff("t" * 64, fingerprint="fa", host="pbx.test",
                                       now=NOW + timedelta(seconds=6), new_id_hash="d" * 64)
    assert again is HandoffRefusal.USED
    assert await store.get_session("d" * 64) is None


@pytest.mark.parametrize(("token", "fingerprint", "host", "at", "why"), [
    ("u" * 64, "fa", "pbx.test", 5, HandoffRefusal.UNKNOWN),
    ("t" * 64, "fb", "pbx.test", 5, HandoffRefusal.OTHER_CERTIFICATE),
    ("t" * 64, "fa", "wiki.test", 5, HandoffRefusal.OTHER_HOST),
    ("t" * 64, "fa", "pbx.test", 60, HandoffRefusal.EXPIRED),
    ("t" * 64, "fa", "pbx.test", 61, HandoffRefusal.EXPIRED),
])
async def test_refusals_say_why_and_start_nothing(store: Store, token: str, fingerprint: str,
                                                  host: str, at: int, why: HandoffRefusal
                                                  ) -> None:
    await _with_token(store)
    result = await store.redeem_handoff(token, fingerprint=fingerprint, host=host,
                                        now=NOW + timedelta(seconds=at), new_id_hash="c" * 64)
    assert result is why
    assert [s.id_hash for s in await store.list_sessions()] == [ORIGIN.id_hash]
    if why is not HandoffRefusal.EXPIRED:  # a refused try does not spend the owner's token
        ok = await store.redeem_handoff("t" * 64, fingerprint="fa", host="pbx.test",
                                        now=NOW + timedelta(seconds=6), new_id_hash="c" * 64)
        assert isinstance(ok, SessionRecord)


async def test_two_nodes_racing_for_one_token_start_one_session(store: Store) -> None:
    await _with_token(store)
    results = await asyncio.gather(*(
        store.redeem_handoff("t" * 64, fingerprint="fa", host="pbx.test",
                             now=NOW + timedelta(seconds=1), new_id_hash=c * 64)
        for c in "cd"))
    assert sorted(isinstance(r, SessionRecord) for r in results) == [False, True]
    assert len(await store.list_sessions()) == 2


async def test_a_token_of_an_ended_session_starts_nothing(store: Store) -> None:
    await _with_token(store)
    await store.end_sessions(id_prefix=ORIGIN.id_hash)
    result = await store.redeem_handoff("t" * 64, fingerprint="fa", host="pbx.test",
                                        now=NOW + timedelta(seconds=1), new_id_hash="c" * 64)
    assert result is HandoffRefusal.ORIGIN_ENDED
    assert await store.list_sessions() == []


async def test_sessions_end_with_the_one_they_were_handed_off_from(store: Store) -> None:
    await _with_token(store)
    first = await store.redeem_handoff("t" * 64, fingerprint="fa", host="pbx.test",
                                       now=NOW, new_id_hash="c" * 64)
    assert isinstance(first, SessionRecord)
    await store.create_session(SessionRecord("d" * 64, "alice", "fa", LOGIN, NOW, NOW,
                                             ("mtls",), host="ops.test", origin="c" * 64))
    await store.create_session(SessionRecord("e" * 64, "alice", "fa", NOW, NOW, NOW,
                                             ("mtls",), host="ops.test"))
    # Ending a handed-off session leaves its origin alone.
    assert await store.end_sessions(id_prefix="d" * 16) == ["d" * 64]
    await store.create_session(SessionRecord("d" * 64, "alice", "fa", LOGIN, NOW, NOW,
                                             ("mtls",), host="ops.test", origin="c" * 64))
    # Ending the origin ends its hand-offs, and theirs.
    assert sorted(await store.end_sessions(id_prefix="a" * 16)) == ["a" * 64, "c" * 64, "d" * 64]
    assert [s.id_hash for s in await store.list_sessions()] == ["e" * 64]


def _alembic(url: str, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from gateway.store.db import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    getattr(command, action)(cfg, revision)


async def test_migration_0003_keeps_sessions_and_goes_back(database_url: str) -> None:
    await asyncio.to_thread(_alembic, database_url, "upgrade", "0002")
    store = Store(make_engine(database_url), database_url)  # the schema of 0002, as it is
    try:
        await store.add_user("alice")
        async with store._tx() as conn:
            await conn.execute(text(
                "INSERT INTO sessions (id_hash, user_id, fingerprint, created_at, last_seen, "
                "factors) SELECT :h, id, 'fa', :t, :t, 'mtls,pwd,otp' FROM users"),
                {"h": "a" * 64, "t": NOW.replace(tzinfo=None)})
    finally:
        await store.close()
    store = await Store.open(database_url)  # to 0003: the session stays, without a host
    try:
        got = await store.get_session("a" * 64)
        assert got is not None and (got.host, got.origin, got.factors) == (
            None, None, ("mtls", "pwd", "otp"))
    finally:
        await store.close()
    await asyncio.to_thread(_alembic, database_url, "downgrade", "0002")
    await asyncio.to_thread(_alembic, database_url, "upgrade", "head")
