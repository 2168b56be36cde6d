"""``certgate audit search`` as a reviewer runs it: a readable table newest first, every
field in ``--json``, serials as ``cert list`` prints them, mistakes in one sentence."""

from __future__ import annotations

import asyncio

from gateway.audit.assembly import build_audit_writer
from gateway.config import load_config
from gateway.store.store import Store
from tests.gateway.audit.helpers import record
from tests.gateway.cli.conftest import Certgate
from tests.gateway.cli.test_audit_cmd import set_node, write_records


def test_a_table_newest_first_and_a_note_when_more_match(cg: Certgate) -> None:
    set_node(cg, "gw1")
    write_records(cg.config, 5)
    result = cg.ok("audit", "search", "--user", "alice", "--since", "2026-11-24", "--limit", "3")
    lines = result.out.splitlines()
    assert lines[0].split() == ["time", "(UTC)", "node", "type", "user", "app", "decision",
                                "reason", "path", "ref"]
    assert lines[1].split() == ["2026-11-24", "12:00:00.004", "gw1", "access", "alice", "wiki",
                                "allow", "allowed", "/", "000000000004"]
    assert [line.split()[-1] for line in lines[2:]] == ["000000000003", "000000000002"]
    assert "only the newest 3 matching records are shown" in result.err


def test_json_has_every_field_and_the_serial_is_found_as_printed(cg: Certgate) -> None:
    set_node(cg, "gw1")
    write_records(cg.config, 3)
    records = cg("audit", "search", "--cert", "01:ab", "--oldest-first", "--json").json()
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["serial"] == "01AB" and len(records[0]["hash"]) == 64
    assert cg.ok("audit", "search", "--ref", "000000000001", "--json").json()[0]["seq"] == 2
    assert cg.ok("audit", "search", "--decision", "deny").out == "no audit records match\n"


def test_bad_filters_are_refused_clearly(cg: Certgate) -> None:
    result = cg("audit", "search", "--cert", "zz")
    assert result.code == 1 and result.err == \
        "certgate: --cert: 'zz' is not a certificate serial (hex digits, colons allowed)\n"
    result = cg("audit", "search", "--decision", "perhaps")
    assert result.code == 2 and "'perhaps' is not one of 'allow', 'deny'" in result.err
    result = cg("audit", "search", "--since", "1h", "--until", "2h")
    assert result.code == 1 and "is not after --since" in result.err


def test_control_characters_in_a_path_are_shown_not_run(cg: Certgate) -> None:
    async def go() -> None:
        config = load_config(cg.config)
        store = await Store.open(config.database_url)
        try:
            writer = build_audit_writer(config, store)
            await writer.start()
            writer.emit(record(0, path="/\x1b[2J\x1b[31mred\r\nfake"))
            await writer.close()
        finally:
            await store.close()
    asyncio.run(go())
    out = cg.ok("audit", "search").out
    assert "\x1b" not in out and "\r" not in out
    assert "/\\x1b[2J\\x1b[31mred\\x0d\\x0afake" in out
    [found] = cg.ok("audit", "search", "--type", "access", "--json").json()
    assert found["path"] == "/\x1b[2J\x1b[31mred\r\nfake"
