"""A person's own access against a real store (SQLite, and PostgreSQL when configured)
and a real CA: exactly their certificates, live sessions and audit records, newest
first; suspending and ending only what is theirs, refusals that change nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit.record import AuditRecord
from gateway.config import Config
from gateway.manage import me
from gateway.manage.ca import CaLoader
from gateway.manage.errors import ManageError
from gateway.store.records import CertStatus, SessionRecord
from gateway.store.store import Store
from tests.gateway.audit.helpers import fill
from tests.gateway.manage.test_certs import issue

Clock = Callable[[], datetime]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def access(at: datetime, user: str, path: str) -> AuditRecord:
    return AuditRecord(reference="r", at=at, decision="allow", reason="allowed", rule=None,
                       app="wiki", user=user, serial=None, fingerprint=None, method="GET",
                       host="wiki.test", path=path, source_ip="192.0.2.1", status=200,
                       duration_ms=1.0)


def session(id_char: str, user: str, fingerprint: str, created: datetime,
            seen: datetime) -> SessionRecord:
    return SessionRecord(id_char * 64, user, fingerprint, created, seen, created,
                         ("mtls", "pwd", "otp"), host="wiki.test")


async def test_my_access_is_exactly_mine_newest_first(alice: Store, config: Config,
                                                      load_ca: CaLoader, clock: Clock,
                                                      tmp_path: Path) -> None:
    store = alice
    first = await issue(store, config, load_ca, clock, tmp_path)
    second = await issue(store, config, load_ca, clock, tmp_path)
    bobs = await issue(store, config, load_ca, clock, tmp_path, user="bob")
    fp = first.record.fingerprint
    await store.create_session(session("a", "alice", fp, T0, T0 + HOUR))
    await store.create_session(session("b", "alice", fp, T0 + HOUR, T0 + 2 * HOUR))
    await store.create_session(session("c", "alice", fp, T0 - DAY, T0 - DAY))  # idled out
    await store.create_session(session("d", "bob", bobs.record.fingerprint, T0, T0))
    await fill(store, tmp_path, [access(T0 + timedelta(minutes=i), "alice", f"/a{i}")
                                 for i in range(60)] + [access(T0, "bob", "/bob")])

    got = await me.my_access(store, "alice", now=T0 + 2 * HOUR, idle=HOUR,
                             absolute=12 * HOUR)
    assert [c.serial for c in got.certificates] == [second.record.serial, first.record.serial]
    assert [s.id_hash[0] for s in got.sessions] == ["b", "a"]
    assert len(got.recent) == me.RECENT == 50
    assert [line.path for line in got.recent[:2]] == ["/a59", "/a58"]
    assert {line.path for line in got.recent} == {f"/a{i}" for i in range(10, 60)}


async def test_suspending_only_my_own_active_certificate(alice: Store, config: Config,
                                                         load_ca: CaLoader, clock: Clock,
                                                         tmp_path: Path) -> None:
    store = alice
    mine = (await issue(store, config, load_ca, clock, tmp_path)).record
    bobs = (await issue(store, config, load_ca, clock, tmp_path, user="bob")).record
    for serial in (bobs.serial, 0xDEAD):  # another's and nobody's read the same
        with pytest.raises(ManageError, match="you have no certificate with serial"):
            await me.suspend_own_certificate(store, config, load_ca, user="alice",
                                             serial=serial, now=clock())
    assert (await store.get_certificate(bobs.serial)).status is CertStatus.ACTIVE

    change = await me.suspend_own_certificate(store, config, load_ca, user="alice",
                                              serial=mine.serial, now=clock())
    assert change.crl.published and change.changed[0].status is CertStatus.SUSPENDED
    with pytest.raises(ManageError, match="is suspended already"):
        await me.suspend_own_certificate(store, config, load_ca, user="alice",
                                         serial=mine.serial, now=clock())


async def test_ending_only_my_own_sessions(alice: Store, config: Config, load_ca: CaLoader,
                                           clock: Clock, tmp_path: Path) -> None:
    store = alice
    mine = (await issue(store, config, load_ca, clock, tmp_path)).record
    bobs = (await issue(store, config, load_ca, clock, tmp_path, user="bob")).record
    await store.create_session(session("a", "alice", mine.fingerprint, T0, T0))
    await store.create_session(session("d", "bob", bobs.fingerprint, T0, T0))
    for ids in (["d" * 64], ["a" * 64, "d" * 64], [], ["a" * 16]):
        with pytest.raises(ManageError, match="not yours"):
            await me.end_own_sessions(store, user="alice", id_hashes=ids)
    assert len(await store.list_sessions()) == 2
    assert await me.end_own_sessions(store, user="alice", id_hashes=["a" * 64]) == ["a" * 64]
    assert [s.user for s in await store.list_sessions()] == ["bob"]
