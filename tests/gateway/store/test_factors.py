"""The second factor in the store: replay and one-time rules as conditional writes,
failures, sessions and their events (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.store.records import FailureRecord, SessionRecord
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


async def test_totp_steps_are_accepted_once_and_only_forward(store: Store) -> None:
    await store.add_user("alice")
    assert await store.get_totp("alice") is None
    await store.set_totp("alice", "v1:sealed", state="pending")
    record = await store.get_totp("alice")
    assert record is not None and (record.state, record.last_step) == ("pending", None)
    assert await store.accept_totp_step("alice", 100, confirm=True) is True
    assert await store.accept_totp_step("alice", 100) is False  # the same step again
    assert await store.accept_totp_step("alice", 99) is False  # an older one
    # Two nodes racing for the same new step: exactly one wins.
    results = await asyncio.gather(store.accept_totp_step("alice", 101),
                                   store.accept_totp_step("alice", 101))
    assert sorted(results) == [False, True]
    record = await store.get_totp("alice")
    assert record is not None and (record.state, record.last_step) == ("active", 101)


async def test_every_authenticator_state_at_once(store: Store) -> None:
    """The console's users page: each enrolled user's state in one read, never a
    secret; a user without an authenticator is absent."""
    for name in ("ann", "ben", "cid"):
        await store.add_user(name)
    assert await store.totp_states() == {}
    await store.set_totp("ann", "v1:sealed-a", state="pending")
    await store.set_totp("ben", "v1:sealed-b", state="pending")
    assert await store.accept_totp_step("ben", 7, confirm=True)
    assert await store.totp_states() == {"ann": "pending", "ben": "active"}
    await store.reset_totp("ann")
    assert await store.totp_states() == {"ben": "active"}


async def test_recovery_codes_are_used_once(store: Store) -> None:
    await store.add_user("alice")
    await store.replace_recovery_codes("alice", ["h1", "h2"])
    codes = await store.unused_recovery_codes("alice")
    assert [h for _, h in codes] == ["h1", "h2"]
    assert await store.use_recovery_code(codes[0][0], NOW) is True
    assert await store.use_recovery_code(codes[0][0], NOW) is False
    assert [h for _, h in await store.unused_recovery_codes("alice")] == ["h2"]
    await store.replace_recovery_codes("alice", ["h3"])
    assert [h for _, h in await store.unused_recovery_codes("alice")] == ["h3"]


async def test_failures_saved_cleared_and_locks_listed(store: Store) -> None:
    rec = FailureRecord("user:alice", 5, NOW, NOW + timedelta(minutes=15))
    stored = {rec.subject: rec, "cert:ab": FailureRecord("cert:ab", 1, NOW, None)}
    await store.add_failure(list(stored), NOW, lambda before: stored[before.subject])
    assert (await store.failures(["user:alice", "cert:ab", "user:bob"])) == {
        "user:alice": rec, "cert:ab": FailureRecord("cert:ab", 1, NOW, None)}
    assert await store.locked_subjects(NOW) == [rec]
    assert await store.locked_subjects(NOW + timedelta(minutes=16)) == []
    assert await store.clear_failures(["user:alice"]) == 1
    assert list(await store.failures(["user:alice", "cert:ab"])) == ["cert:ab"]


async def test_parallel_failures_all_count(store: Store) -> None:
    """Twenty attempts at once (twenty connections, as from several nodes): every one
    counts; the lost update of a read-then-write count would leave 1."""
    def one_more(rec: FailureRecord) -> FailureRecord:
        return FailureRecord(rec.subject, rec.count + 1, rec.window_start, rec.locked_until)

    results = await asyncio.gather(*(store.add_failure(["user:alice", "cert:ab"], NOW, one_more)
                                     for _ in range(20)))
    befores = sorted(before.count for pairs in results for before, _ in pairs
                     if before.subject == "user:alice")
    assert befores == list(range(20))  # each saw the one before it
    stored = await store.failures(["user:alice", "cert:ab"])
    assert stored["user:alice"].count == stored["cert:ab"].count == 20
    assert stored["user:alice"].window_start == NOW


async def test_sessions_with_events_and_ends(store: Store) -> None:
    for name in ("alice", "bob"):
        await store.add_user(name)
    sessions = [SessionRecord(c * 64, u, fp, NOW, NOW, NOW, ("mtls", "pwd", "otp"))
                for c, u, fp in (("a", "alice", "fa"), ("b", "alice", "fb"), ("c", "bob", "fc"))]
    before = (await store.identity_snapshot()).last_event_id
    for s in sessions:
        await store.create_session(s)
    assert await store.get_session("a" * 64) == sessions[0]
    assert [s.id_hash for s in await store.list_sessions("alice")] == ["a" * 64, "b" * 64]
    assert (await store.identity_snapshot()).sessions == tuple(sessions)
    assert await store.end_sessions(fingerprint="fb") == ["b" * 64]
    assert await store.end_sessions(id_prefix="c" * 16) == ["c" * 64]
    await store.set_totp("alice", "v1:new", state="active")  # re-enrolment ends the rest
    assert await store.list_sessions() == []
    events = await store.events_after(before)
    assert [(e.kind, e.key[:1]) for e in events if e.kind == "session"] == [
        ("session", "a"), ("session", "b"), ("session", "c"), ("session", "b"),
        ("session", "c"), ("session", "a")]
    assert await store.end_sessions() == []  # no condition: ends nothing


async def test_revoking_suspending_or_disabling_ends_sessions(store: Store) -> None:
    from gateway.store.records import CertRecord, CertStatus

    await store.add_user("alice")
    for serial, fp in ((1, "f1"), (2, "f2")):
        await store.add_certificate(CertRecord(
            serial=serial, user="alice", fingerprint=fp * 32, subject="CN=alice",
            not_before=NOW, not_after=NOW + timedelta(days=1), status=CertStatus.ACTIVE,
            issued_at=NOW, pem=""))
    for c, fp in (("a", "f1"), ("b", "f2"), ("c", "f2")):
        await store.create_session(SessionRecord(c * 64, "alice", fp * 32, NOW, NOW, NOW,
                                                 ("mtls",)))
    await store.suspend_certificate(1, at=NOW)
    assert [s.id_hash[0] for s in await store.list_sessions()] == ["b", "c"]
    await store.resume_certificate(1)  # resuming brings no session back
    assert [s.id_hash[0] for s in await store.list_sessions()] == ["b", "c"]
    await store.set_user_enabled("alice", True)
    assert len(await store.list_sessions()) == 2
    await store.set_user_enabled("alice", False)
    assert await store.list_sessions() == []


async def test_session_use_moves_last_seen_forward_without_an_event(store: Store) -> None:
    await store.add_user("alice")
    for c in "ab":
        await store.create_session(SessionRecord(c * 64, "alice", "fa", NOW, NOW, NOW, ("mtls",)))
    before = (await store.identity_snapshot()).last_event_id
    later = NOW + timedelta(minutes=20)
    await store.touch_sessions({"a" * 64: later, "b" * 64: NOW - timedelta(minutes=1),
                                "gone" * 16: later})  # never back; an ended one: nothing
    await store.touch_sessions({})
    assert sorted((s.id_hash[0], s.last_seen) for s in await store.list_sessions()) == [
        ("a", later), ("b", NOW)]
    assert await store.events_after(before) == []  # the feed is not flooded
    assert await store.sessions_seen_since(NOW + timedelta(minutes=5)) == [("a" * 64, later)]
    assert await store.sessions_seen_since(later) == []
