"""The Store on SQLite and, when configured, PostgreSQL: every method and refusal."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def cert(serial: int, user: str = "alice", *, days: int = 30, fp: str | None = None) -> CertRecord:
    return CertRecord(serial=serial, user=user, fingerprint=fp or f"{serial:064x}",
                      subject=f"CN={user}", not_before=NOW - timedelta(days=1),
                      not_after=NOW + timedelta(days=days), status=CertStatus.ACTIVE,
                      issued_at=NOW, pem="-----BEGIN CERTIFICATE-----")


async def test_users_round_trip(store: Store) -> None:
    added = await store.add_user("alice", email="alice@example.test", groups=["staff", "ops"],
                                 password_hash="$argon2id$x")
    assert (added.name, added.email, added.enabled, added.groups) == (
        "alice", "alice@example.test", True, ("ops", "staff"))
    assert added.created_at.tzinfo is not None
    await store.add_user("bob")
    assert [u.name for u in await store.list_users()] == ["alice", "bob"]
    assert (await store.set_user_enabled("bob", False)).enabled is False
    assert (await store.set_user_groups("bob", ["staff"])).groups == ("staff",)
    assert (await store.set_user_groups("alice", [])).groups == ()
    await store.set_password_hash("alice", "$argon2id$y")
    assert (await store.get_user("alice")).password_hash == "$argon2id$y"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda s: s.add_user("alice"), ConflictError, "a user named 'alice' already exists"),
    (lambda s: s.get_user("nobody"), NotFoundError, "no user named 'nobody'"),
    (lambda s: s.set_user_enabled("nobody", False), NotFoundError, "no user named 'nobody'"),
    (lambda s: s.set_user_groups("nobody", ["x"]), NotFoundError, "no user named 'nobody'"),
    (lambda s: s.get_certificate(0xABCD), NotFoundError, "no certificate with serial ABCD"),
    (lambda s: s.add_certificate(cert(7, "nobody")), NotFoundError, "no user named 'nobody'"),
    (lambda s: s.add_certificate(cert(1)), ConflictError, "already stored"),
    (lambda s: s.add_certificate(cert(99, fp=f"{1:064x}")), ConflictError, "already stored"),
    (lambda s: s.resume_certificate(1), ConflictError, "is active, not suspended"),
    (lambda s: s.list_certificates(user="nobody"), NotFoundError, "no user named 'nobody'"),
])
async def test_refusals_change_nothing(store: Store, call, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    await store.add_user("alice")
    await store.add_certificate(cert(1))
    before_events = await store.events_after(0)
    before = await store.identity_snapshot()
    with pytest.raises(error, match=message):
        await call(store)
    assert await store.events_after(0) == before_events
    assert await store.identity_snapshot() == before


async def test_revocation_lifecycle(store: Store) -> None:
    await store.add_user("alice")
    await store.add_certificate(cert(1))
    suspended = await store.suspend_certificate(1, at=NOW)
    assert (suspended.status, suspended.reason) == (CertStatus.SUSPENDED, "certificateHold")
    with pytest.raises(ConflictError, match="is suspended, not active"):
        await store.suspend_certificate(1, at=NOW)
    resumed = await store.resume_certificate(1)
    assert (resumed.status, resumed.revoked_at, resumed.reason) == (CertStatus.ACTIVE, None, None)
    revoked = await store.revoke_certificate(1, reason="keyCompromise", at=NOW,
                                             invalidity_date=NOW - timedelta(hours=2))
    assert revoked.status is CertStatus.REVOKED and revoked.invalidity_date is not None
    with pytest.raises(ConflictError, match="is already revoked"):
        await store.revoke_certificate(1, reason=None, at=NOW)
    assert [c.serial for c in await store.revoked_certificates()] == [1]


async def test_suspended_can_be_revoked_and_all_of_a_user(store: Store) -> None:
    await store.add_user("alice")
    for serial in (1, 2, 3):
        await store.add_certificate(cert(serial))
    await store.suspend_certificate(2, at=NOW)
    await store.revoke_certificate(3, reason=None, at=NOW)
    revoked = await store.revoke_user_certificates("alice", reason="affiliationChanged", at=NOW)
    assert sorted(c.serial for c in revoked) == [1, 2]
    statuses = {c.serial: c.status for c in await store.list_certificates(user="alice")}
    assert set(statuses.values()) == {CertStatus.REVOKED}


async def test_supersede_is_atomic(store: Store) -> None:
    await store.add_user("alice")
    await store.add_user("bob")
    await store.add_certificate(cert(1))
    await store.add_certificate(cert(5, "bob"))
    # the new record collides with bob's fingerprint: nothing may change
    with pytest.raises(ConflictError):
        await store.supersede_certificate(1, cert(2, fp=f"{5:064x}"), at=NOW)
    assert (await store.get_certificate(1)).status is CertStatus.ACTIVE
    with pytest.raises(NotFoundError):
        await store.get_certificate(2)
    await store.supersede_certificate(1, cert(2), at=NOW)
    old = await store.get_certificate(1)
    assert (old.status, old.reason, old.replaced_by) == (CertStatus.REVOKED, "superseded", 2)
    with pytest.raises(ConflictError, match="same user"):
        await store.supersede_certificate(2, cert(3, "bob"), at=NOW)


async def test_list_filters(store: Store) -> None:
    await store.add_user("alice")
    await store.add_user("bob")
    await store.add_certificate(cert(1, days=5))
    await store.add_certificate(cert(2, days=60))
    await store.add_certificate(replace(cert(3, "bob"), not_after=NOW - timedelta(days=1)))
    await store.revoke_certificate(2, reason=None, at=NOW)

    async def serials(**kw: object) -> list[int]:
        return [c.serial for c in await store.list_certificates(now=NOW, **kw)]  # type: ignore[arg-type]

    assert await serials() == [1, 2, 3]
    assert await serials(user="bob") == [3]
    assert await serials(status=CertStatus.REVOKED) == [2]
    assert await serials(expired=True) == [3]
    assert await serials(expired=False, expiring_before=NOW + timedelta(days=10)) == [1]


async def test_every_mutation_writes_one_event_in_order(store: Store) -> None:
    await store.add_user("alice", groups=["staff"])
    await store.add_certificate(cert(1))
    await store.set_user_groups("alice", ["ops"])
    await store.suspend_certificate(1, at=NOW)
    await store.resume_certificate(1)
    await store.set_user_enabled("alice", False)
    await store.revoke_certificate(1, reason=None, at=NOW)
    events = await store.events_after(0)
    assert [(e.kind, e.key) for e in events] == [
        ("user", "alice"), ("cert", "01"), ("user", "alice"), ("cert", "01"), ("cert", "01"),
        ("user", "alice"), ("cert", "01")]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert await store.events_after(events[-2].id) == [events[-1]]
    snapshot = await store.identity_snapshot()
    assert snapshot.last_event_id == events[-1].id


async def test_crl_numbers_strictly_increase_under_concurrency(store: Store) -> None:
    numbers = await asyncio.gather(*(store.next_crl_number() for _ in range(20)))
    assert len(set(numbers)) == 20 and min(numbers) >= 1
    assert await store.next_crl_number() > max(numbers)


async def test_crls_are_recorded(store: Store) -> None:
    assert await store.latest_crl() is None
    for number in (1, 2):
        await store.record_crl(number, NOW, NOW + timedelta(days=1), b"der%d" % number)
    assert await store.latest_crl() == (2, NOW, NOW + timedelta(days=1), b"der2")


async def test_hostile_strings_are_just_data(store: Store) -> None:
    name = "robert'); DROP TABLE users;--"
    await store.add_user(name, groups=["g' OR '1'='1"])
    assert (await store.get_user(name)).groups == ("g' OR '1'='1",)
    assert len(await store.list_users()) == 1
