"""The access review over a real gateway: requests over TLS with client certificates,
the records the gateway wrote, the certificates in its store, today's policy; then the
same figures after someone edits a record in the database (the banner says FAILED);
and the file written whole, never over an existing one unless asked."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit.keys import load_audit_public_key
from gateway.audit.report import ReportData, render_report
from gateway.manage.errors import ManageError
from gateway.manage.report import gather_report, write_report
from gateway.store.db import serial_hex
from tests.gateway.conftest import Gateway


async def gather(gateway: Gateway, now: datetime) -> ReportData:
    config = gateway.runtime.state.config
    return await gather_report(
        gateway.runtime.store, config, since=now - timedelta(days=1),
        until=now + timedelta(minutes=1), now=now, generated_by="tester",
        public_key=load_audit_public_key(config.audit.public_key),
        public_key_path=config.audit.public_key, checkpoint_file=config.audit.checkpoints)


async def test_the_report_counts_what_happened_through_the_gateway(gateway: Gateway) -> None:
    for _ in range(3):
        assert (await gateway.request("GET", "/hello"))[0] == 200
    assert (await gateway.request("GET", "/hello", user="carol"))[0] == 200
    assert (await gateway.request("GET", "/admin/x"))[0] == 403  # wiki's deny rule
    assert (await gateway.request("GET", "/<script>x"))[0] == 400  # refused as it is
    assert (await gateway.request("GET", "/hello", user="bob"))[0] == 403  # not staff
    revoked = await gateway.revoke("dave")
    await gateway.runtime.audit.flush()
    now = datetime.now(UTC)

    data = await gather(gateway, now)
    assert data.verdict.state == "ok" and data.verdict.records >= 7
    assert [(u.app, u.user, u.requests) for u in data.usage] == [
        ("wiki", "alice", 3), ("wiki", "carol", 1)]
    assert {(d.reason, d.refused, d.people) for d in data.denials} == {
        ("denied-by-rule", 1, 1), ("no-matching-allow-rule", 1, 1), ("ambiguous-path", 1, 1)}
    assert sum(d.allowed for d in data.days) == 4 and sum(d.denied for d in data.days) == 3
    assert {(a.host, a.path) for a in data.refused_addresses} == {
        ("wiki.test", "/admin/x"), ("wiki.test", "/hello"), ("wiki.test", "/<script>x")}
    wiki = next(a for a in data.apps if a.name == "wiki")
    assert [u for u, _ in wiki.limited] == ["alice", "carol", "dave"]  # deny /admin
    assert wiki.full == [] and "not paths /admin" in wiki.limited[0][1].conditions
    pbx = next(a for a in data.apps if a.name == "pbx")
    assert [(u, r.conditions) for u, r in pbx.limited] == [
        ("carol", ("only requests GET and from 192.0.2.0/24",))]
    secure = next(a for a in data.apps if a.name == "secure")
    assert {r.second_factor for _, r in secure.full} == {"always"}
    assert data.without_certificate == ["dave"]
    assert [c.serial for c in data.revoked] == [serial_hex(revoked)]
    assert sorted(c.user for c in data.issued) == ["alice", "bob", "carol", "dave"]
    # The gateway's own chain (the fixtures' admin changes are on <node>.cli).
    [node] = [n for n in data.nodes if n.node == gateway.runtime.audit.node]
    assert node.starts == 1 and node.records >= 7

    html = render_report(data)
    assert "Audit log check: OK" in html and "<script" not in html
    assert "/&lt;script&gt;x" in html


async def test_an_edited_record_turns_the_banner_to_failed(gateway: Gateway) -> None:
    assert (await gateway.request("GET", "/hello"))[0] == 200
    assert (await gateway.request("GET", "/hello"))[0] == 200
    await gateway.runtime.audit.flush()
    with sqlite3.connect(gateway.data_dir / "certgate.db") as db:
        db.execute("UPDATE audit_records SET path = '/innocent' WHERE seq = 2 AND node = ?",
                   (gateway.runtime.audit.node,))
    data = await gather(gateway, datetime.now(UTC))
    assert data.verdict.state == "failed"
    [node] = [n for n in data.verdict.nodes if not n.ok]
    assert node.node == gateway.runtime.audit.node
    assert (node.breaks[0].seq, node.breaks[0].kind) == (2, "edited")
    html = render_report(data)
    assert "Audit log check: FAILED" in html and "record 2 was edited" in html


def test_the_file_is_written_whole_and_never_over_another(tmp_path: Path) -> None:
    out = tmp_path / "review.html"
    write_report(out, "<p>one</p>", force=False)
    assert out.read_text() == "<p>one</p>"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it names people
    with pytest.raises(ManageError, match="already exists; pass --force"):
        write_report(out, "<p>two</p>", force=False)
    assert out.read_text() == "<p>one</p>"
    write_report(out, "<p>two</p>", force=True)
    assert out.read_text() == "<p>two</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.html"]  # no temp file left
    with pytest.raises(ManageError, match="is a directory"):
        write_report(tmp_path, "x", force=True)
    with pytest.raises(ManageError, match="cannot write in"):
        write_report(tmp_path / "missing" / "r.html", "x", force=False)
