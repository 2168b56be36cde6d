"""The access review's aggregates, counted by the database (SQLite and PostgreSQL), over
records appended through the real audit writer and certificates in the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit.record import AuditRecord
from gateway.store.audit_report import (
    Address,
    DayCount,
    ReasonCount,
    SignIns,
)
from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store
from tests.gateway.audit.helpers import fill

DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SINCE, UNTIL = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)


def access(at: datetime, user: str | None, app: str | None, *, decision: str = "allow",
           reason: str = "allowed", path: str = "/", host: str = "wiki.test",
           type: str = "access", factors: str | None = None) -> AuditRecord:
    return AuditRecord(reference="r", at=at, decision=decision, reason=reason, rule=None,
                       app=app, user=user, serial=None, fingerprint=None, method="GET",
                       host=host, path=path, source_ip="192.0.2.1", status=200,
                       duration_ms=1.0, type=type, factors=factors)


async def test_usage_days_denials_and_sign_ins_are_counted(store: Store, tmp_path: Path) -> None:
    records = [
        *[access(DAY1 + timedelta(minutes=i), "alice", "wiki") for i in range(3)],
        access(DAY2, "alice", "wiki"),
        access(DAY2, "bob", "pbx"),
        access(DAY2, "bob", "wiki", reason="builtin"),  # a gateway page, not the app
        access(DAY1, "bob", "pbx", decision="deny", reason="no-matching-allow-rule",
               path="/admin"),
        access(DAY2, "bob", "pbx", decision="deny", reason="no-matching-allow-rule",
               path="/admin"),
        access(DAY2, "carol", "pbx", decision="deny", reason="no-matching-allow-rule",
               path="/admin"),
        access(DAY2, None, None, decision="deny", reason="no-certificate", host="x.test"),
        access(DAY1, "alice", "secure", type="login", reason="login-succeeded",
               factors="cert,totp"),
        access(DAY2, "alice", "secure", type="login", reason="login-succeeded",
               factors="cert,recovery"),
        access(DAY2, "bob", "secure", type="login", decision="deny", reason="login-failed"),
        access(DAY2, "bob", "secure", type="login", decision="deny", reason="locked-out"),
        AuditRecord.event("lockout", DAY2, reference="l", reason="locked-out", user="bob"),
        access(SINCE - timedelta(seconds=1), "alice", "wiki"),  # before the period
        access(UNTIL, "alice", "wiki"),  # the end is not included
    ]
    await fill(store, tmp_path, records)

    usage = await store.report_usage(SINCE, UNTIL)
    assert [(u.app, u.user, u.requests, u.first_at, u.last_at) for u in usage] == [
        ("pbx", "bob", 1, DAY2, DAY2), ("wiki", "alice", 4, DAY1, DAY2)]
    assert await store.report_days(SINCE, UNTIL) == [
        DayCount("2026-11-02", 4, 1), DayCount("2026-11-03", 4, 5)]
    assert await store.report_denials(SINCE, UNTIL) == [
        ReasonCount("no-matching-allow-rule", 3, 2), ReasonCount("locked-out", 1, 1),
        ReasonCount("login-failed", 1, 1), ReasonCount("no-certificate", 1, 0)]
    assert await store.report_refused_addresses(SINCE, UNTIL, limit=2) == [
        Address("wiki.test", "/admin", 3, 2), Address("wiki.test", "/", 2, 1)]
    assert await store.report_sign_ins(SINCE, UNTIL) == [
        SignIns("alice", 2, 0, 0, 0, 1), SignIns("bob", 0, 1, 1, 1, 0)]
    [node] = await store.report_nodes(SINCE, UNTIL)
    assert (node.node, node.records, node.first_at, node.last_at) == ("gw1", 15, DAY1, DAY2)


async def test_admin_actions_are_the_records_with_an_actor_newest_kept(
        store: Store, tmp_path: Path) -> None:
    events = [AuditRecord.event("cert.revoke", DAY1 + timedelta(minutes=i), reference=f"a{i}",
                                reason="keyCompromise", actor="root", user="bob",
                                detail={"n": i}) for i in range(5)]
    events.append(AuditRecord.event("gateway.start", DAY1, reference="s", reason="start",
                                    actor="certgate"))  # a start is not an admin change
    events.append(access(DAY1, "alice", "wiki"))
    await fill(store, tmp_path, events)
    total, rows = await store.report_admin(SINCE, UNTIL, limit=3)
    assert total == 5
    assert [(r.type, r.actor, r.user, r.detail) for r in rows] == [
        ("cert.revoke", "root", "bob", '{"n":2}'), ("cert.revoke", "root", "bob", '{"n":3}'),
        ("cert.revoke", "root", "bob", '{"n":4}')]
    [node] = await store.report_nodes(SINCE, UNTIL)
    assert (node.starts, node.stops) == (1, 0)


def cert(serial: int, user: str, *, issued: datetime, not_after: datetime,
         status: CertStatus = CertStatus.ACTIVE) -> CertRecord:
    return CertRecord(serial=serial, user=user, fingerprint=f"{serial:064x}", subject=f"CN={user}",
                      not_before=issued, not_after=not_after, status=status, issued_at=issued,
                      pem="-")


async def test_certificates_issued_revoked_suspended_and_expiring(store: Store) -> None:
    await store.add_user("alice")
    now = datetime(2026, 11, 7, tzinfo=UTC)
    old = datetime(2025, 1, 1, tzinfo=UTC)
    await store.add_certificate(cert(1, "alice", issued=DAY1, not_after=now + timedelta(days=365)))
    await store.add_certificate(cert(2, "alice", issued=old, not_after=now + timedelta(days=10)))
    await store.add_certificate(cert(3, "alice", issued=old, not_after=now + timedelta(days=90)))
    await store.add_certificate(cert(4, "alice", issued=old, not_after=now + timedelta(days=90)))
    await store.add_certificate(cert(5, "alice", issued=old, not_after=now + timedelta(days=90)))
    await store.add_certificate(cert(6, "alice", issued=old, not_after=now - timedelta(days=1)))
    await store.revoke_certificate(3, reason="keyCompromise", at=DAY2)
    await store.revoke_certificate(5, reason="keyCompromise", at=old)  # before the period
    await store.suspend_certificate(4, at=old)
    rows = await store.report_certificates(SINCE, UNTIL, now=now,
                                           expiring_before=now + timedelta(days=30))
    assert {(int(r.serial, 16), r.status) for r in rows} == {
        (1, "active"), (2, "active"), (3, "revoked"), (4, "suspended")}
    revoked = next(r for r in rows if r.status == "revoked")
    assert (revoked.user, revoked.revoked_at, revoked.reason) == ("alice", DAY2, "keyCompromise")
