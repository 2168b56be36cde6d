"""The writer into the database (SQLite and PostgreSQL): chained records, one
transaction per batch, the chain continued across restarts and outages, nothing lost,
nothing written twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.audit.chain import GENESIS, hash_of
from gateway.audit.sinks import DatabaseSink
from gateway.audit.writer import AuditWriter
from gateway.manage.audit import verify_audit
from gateway.store.store import Store
from tests.gateway.audit.helpers import FlakyDatabase, record, stored


def refs(rows: list[dict[str, object]]) -> list[object]:
    return [r["reference"] for r in rows]


def expected(numbers: range) -> list[str]:
    return [f"{n:012x}" for n in numbers]


def writer_for(database: object, tmp_path: Path, **kwargs: object) -> AuditWriter:
    return AuditWriter(node="gw1", sinks=[DatabaseSink(database, "gw1")],  # type: ignore[arg-type]
                       spool_path=tmp_path / "spool.jsonl", **kwargs)  # type: ignore[arg-type]


async def assert_verifies(store: Store, records: int) -> None:
    result = await verify_audit(store, public_key=None, checkpoint_file=None)
    [node] = result.nodes
    assert (node.node, node.ok, node.records, node.breaks) == ("gw1", True, records, [])


async def test_records_are_chained_into_the_table_and_a_restart_continues_the_chain(
        store: Store, tmp_path: Path) -> None:
    writer = writer_for(store, tmp_path, batch_size=64)
    await writer.start()
    for n in range(300):  # several batches
        writer.emit(record(n, path="/ünïcode/\"q\"\x00"))
    await writer.close()
    rows = await stored(store, "gw1")
    assert refs(rows) == expected(range(300)) and [r["seq"] for r in rows] == list(range(1, 301))
    assert rows[0]["prev_hash"] == GENESIS and rows[0]["hash"] == hash_of(GENESIS, rows[0])
    assert rows[0]["path"] == "/ünïcode/\"q\"\\x00"  # NUL escaped: PostgreSQL refuses it
    assert rows[0]["at"] == "2026-11-24T12:00:00.000Z" and rows[0]["type"] == "access"

    restarted = writer_for(store, tmp_path)
    await restarted.start()
    assert restarted.head == (300, rows[-1]["hash"])
    restarted.emit(record(300))
    await restarted.close()
    rows = await stored(store, "gw1")
    assert rows[-1]["seq"] == 301 and rows[-1]["prev_hash"] == rows[-2]["hash"]
    await assert_verifies(store, 301)


async def test_an_outage_spools_chained_records_and_loses_nothing(
        store: Store, tmp_path: Path) -> None:
    db = FlakyDatabase(store)
    writer = writer_for(db, tmp_path, memory_limit=2)
    await writer.start()
    writer.emit(record(0))
    await writer.flush()
    db.down = True
    for n in range(1, 6):
        writer.emit(record(n))
    with pytest.raises(OSError, match="cannot write the audit records to the database"):
        await writer.flush()
    assert writer.failing and "refused" in (writer.last_error or "")
    spool = [json.loads(line) for line in (tmp_path / "spool.jsonl").read_text().splitlines()]
    assert [r["seq"] for r in spool] == [2, 3, 4]  # chained before they were spooled
    assert len(writer) == 2 and writer.spooled == 5
    for n in range(6, 9):
        writer.emit(record(n))
    db.down = False
    await writer.flush()
    assert not writer.failing and not (tmp_path / "spool.jsonl").exists()
    assert refs(await stored(store, "gw1")) == expected(range(9))
    await assert_verifies(store, 9)


async def test_a_stop_during_an_outage_spools_and_the_next_start_continues_from_it(
        store: Store, tmp_path: Path) -> None:
    db = FlakyDatabase(store)
    writer = writer_for(db, tmp_path)
    await writer.start()
    writer.emit(record(0))
    await writer.flush()
    db.down = True
    for n in range(1, 4):
        writer.emit(record(n))
    await writer.close()  # the three go to the spool, chained as seq 2-4
    restarted = writer_for(store, tmp_path)
    await restarted.start()
    assert restarted.head is not None and restarted.head[0] == 4  # from the spool
    restarted.emit(record(4))
    await restarted.close()
    assert refs(await stored(store, "gw1")) == expected(range(5))
    await assert_verifies(store, 5)


async def test_a_lost_commit_answer_is_not_written_twice(store: Store, tmp_path: Path) -> None:
    db = FlakyDatabase(store)
    writer = writer_for(db, tmp_path)
    await writer.start()
    for n in range(3):
        writer.emit(record(n))
    db.lose_ack = True
    with pytest.raises(OSError):
        await writer.flush()
    writer.emit(record(3))
    await writer.close()
    assert refs(await stored(store, "gw1")) == expected(range(4))
    await assert_verifies(store, 4)


async def test_the_json_lines_file_and_the_database_each_get_every_record_once(
        store: Store, tmp_path: Path) -> None:
    db = FlakyDatabase(store)
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(path, node="gw1", sinks=[DatabaseSink(db, "gw1")],
                         spool_path=tmp_path / "spool.jsonl")
    await writer.start()
    db.down = True
    for n in range(3):
        writer.emit(record(n))
    with pytest.raises(OSError):
        await writer.flush()
    assert [json.loads(x)["seq"] for x in path.read_text().splitlines()] == [1, 2, 3]
    db.down = False
    writer.emit(record(3))
    await writer.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    assert lines == await stored(store, "gw1")  # the same records, hashes and all
