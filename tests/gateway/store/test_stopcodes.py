"""Stop codes in the store: only hashes, only active certificates' unused codes are
offered, and spending one is single-use even when two requests race (SQLite and,
when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)


def _cert(serial: int, user: str) -> CertRecord:
    return CertRecord(serial=serial, user=user, fingerprint=f"{serial:064x}",
                      subject=f"CN={user}", not_before=NOW - timedelta(days=1),
                      not_after=NOW + timedelta(days=365), status=CertStatus.ACTIVE,
                      issued_at=NOW, pem="-----BEGIN CERTIFICATE-----")


async def test_only_unused_codes_of_active_certificates_are_offered(store: Store) -> None:
    await store.add_user("dave")
    await store.add_user("erin")
    for serial, user in ((1, "dave"), (2, "dave"), (3, "erin")):
        await store.add_certificate(_cert(serial, user))
        await store.set_stop_code(serial, f"hash-{serial}", now=NOW)
    assert sorted(await store.stop_code_hashes("dave")) == [(1, "hash-1"), (2, "hash-2")]
    assert await store.stop_code_hashes("nobody") == []
    await store.revoke_certificate(2, reason=None, at=NOW)
    assert await store.stop_code_hashes("dave") == [(1, "hash-1")]
    stopped = await store.suspend_with_stop_code(1, now=NOW)
    assert stopped is not None and stopped[1]
    assert (stopped[0].status, stopped[0].reason) == (CertStatus.SUSPENDED, "certificateHold")
    assert await store.stop_code_hashes("dave") == []
    assert await store.stop_code_hashes("erin") == [(3, "hash-3")]
    # The code of a certificate revoked meanwhile is spent without changing it.
    revoked = await store.suspend_with_stop_code(2, now=NOW)
    assert revoked is not None and revoked[0].status is CertStatus.REVOKED and not revoked[1]


async def test_a_code_suspends_once_when_requests_race(store: Store) -> None:
    await store.add_user("dave")
    await store.add_certificate(_cert(7, "dave"))
    await store.set_stop_code(7, "hash-7", now=NOW)
    before = (await store.identity_snapshot()).last_event_id
    results = await asyncio.gather(*(store.suspend_with_stop_code(7, now=NOW)
                                     for _ in range(5)))
    assert sum(r is not None for r in results) == 1
    assert (await store.get_certificate(7)).status is CertStatus.SUSPENDED
    assert (await store.identity_snapshot()).last_event_id > before  # the feed tells every node
    assert await store.suspend_with_stop_code(99, now=NOW) is None  # no such code
