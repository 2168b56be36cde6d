"""The doctor's check functions (``gateway.ops.doctor``): the pure ones by table, the
database ones against real SQLite and PostgreSQL — the clock compared, the audit
chain head found broken after an edit, a database without the schema named."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from gateway.config import Config, load_config
from gateway.manage.servers import read_leaf
from gateway.manage.setup import SetupRequest, create_data_dir
from gateway.ops.doctor.certs import check_expiry, covers
from gateway.ops.doctor.database import _skew, check_database, head_revision
from gateway.ops.doctor.findings import Finding, Status, exit_code, worst
from gateway.store import tables as t
from gateway.store.store import Store
from tests.gateway.manage.test_audit import write_log

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    request = SetupRequest(data_dir=tmp_path_factory.mktemp("doctor") / "gw",
                           hostnames=("gw.example.test",),
                           pki_base_url="http://gw.example.test:8080")
    made = asyncio.run(create_data_dir(request, now=NOW))
    return load_config(made.config)


@pytest.mark.parametrize(("names", "host", "expected"), [
    (("gw.example.test",), "gw.example.test", True),
    (("gw.example.test",), "GW.example.test.", True),
    (("*.example.test",), "wiki.example.test", True),
    (("*.example.test",), "a.wiki.example.test", False),
    (("*.example.test",), "example.test", False),
    (("127.0.0.1",), "127.0.0.1", True),
    (("::1",), "0:0:0:0:0:0:0:1", True),
    (("gw.example.test",), "wiki.example.test", False),
    ((), "gw.example.test", False),
])
def test_covers(names: tuple[str, ...], host: str, expected: bool) -> None:
    assert covers(names, host) is expected


@pytest.mark.parametrize(("url", "offset", "status"), [
    ("sqlite+aiosqlite:///x.db", 3600.0, Status.PASS),  # one machine: never compared
    ("postgresql+asyncpg://db/x", 0.4, Status.PASS),
    ("postgresql+asyncpg://db/x", -4.9, Status.PASS),
    ("postgresql+asyncpg://db/x", 7.0, Status.WARN),
    ("postgresql+asyncpg://db/x", -12.0, Status.WARN),
    ("postgresql+asyncpg://db/x", 31.0, Status.FAIL),
])
def test_clock_skew(url: str, offset: float, status: Status) -> None:
    local = NOW.timestamp()
    finding = _skew(url, NOW + timedelta(seconds=offset), local)
    assert finding.status is status
    if status is not Status.PASS:
        assert "NTP" in (finding.fix or "")
        assert ("ahead of" if offset > 0 else "behind") in finding.message


@pytest.mark.parametrize(("moment", "status", "words"), [
    (timedelta(days=-31), Status.PASS, "is valid until"),
    (timedelta(days=-29), Status.WARN, "expires in 29 day(s)"),
    (timedelta(seconds=0), Status.FAIL, "expired on"),
    (timedelta(days=-10_000), Status.FAIL, "is valid only from"),
])
def test_expiry(config: Config, moment: timedelta, status: Status, words: str) -> None:
    leaf = read_leaf(config.tls.cert)
    finding = check_expiry("server-cert", "the server certificate", leaf,
                           leaf.not_valid_after_utc + moment, "renew it")
    assert finding.status is status
    assert words in finding.message
    assert (finding.fix is None) is (status is Status.PASS)


def test_worst_and_exit_code() -> None:
    ok, warn, fail = (Finding("a", s, "m") for s in (Status.PASS, Status.WARN, Status.FAIL))
    assert (exit_code([]), exit_code([ok]), exit_code([ok, warn]), exit_code([fail, warn])) \
        == (0, 0, 1, 2)
    assert worst([ok, fail, warn]) is Status.FAIL


async def test_database_checks_and_a_broken_audit_head(config: Config, store: Store,
                                                       database_url: str,
                                                       tmp_path: Path) -> None:
    await write_log(store, tmp_path)
    moved = config.model_copy(update={"database_url": database_url})
    report = await check_database(moved, now=NOW, within=5.0)
    found = {f.check: f for f in report.findings}
    assert report.reachable
    assert found["database"].status is Status.PASS
    assert found["migrations"].status is Status.PASS
    assert head_revision() in found["migrations"].message
    assert found["clock"].status is Status.PASS  # PostgreSQL here runs on this machine
    assert found["crl"].status is Status.FAIL
    assert found["crl"].fix == "run `certgate crl`"
    assert found["audit-chain"].status is Status.PASS
    assert "of 1 node(s) link" in found["audit-chain"].message
    async with store._engine.begin() as conn:
        await conn.execute(update(t.audit_records).where(
            (t.audit_records.c.node == "gw1") & (t.audit_records.c.seq == 20)
        ).values(reason="nothing-to-see"))
    report = await check_database(moved, now=NOW, within=5.0)
    chain = next(f for f in report.findings if f.check == "audit-chain")
    assert chain.status is Status.FAIL
    assert chain.message == "gw1 record 20 does not match its hash"
    assert "certgate audit verify" in (chain.fix or "")


async def test_a_database_without_the_schema_is_named(config: Config, store: Store,
                                                      database_url: str) -> None:
    async with store._engine.begin() as conn:
        await conn.execute(text("DROP TABLE alembic_version"))
    moved = config.model_copy(update={"database_url": database_url})
    report = await check_database(moved, now=NOW, within=5.0)
    assert not report.reachable
    assert [(f.check, f.status) for f in report.findings] == [("database", Status.FAIL)]
    assert "has no certgate schema" in report.findings[0].message
