"""``verify_audit`` against a real table (SQLite and PostgreSQL) tampered with SQL, the
way an admin with database access could: each change is found, naming node and seq;
the checkpoint file outside the database catches a cut tail even when the
checkpoints table was cut too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update

from gateway.audit.chain import hash_of
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.keys import create_audit_key, load_audit_key, load_audit_public_key
from gateway.audit.sinks import DatabaseSink
from gateway.audit.writer import AuditWriter
from gateway.manage.audit import parse_since, verify_audit
from gateway.manage.errors import ManageError
from gateway.store import tables as t
from gateway.store.store import Store
from tests.gateway.audit.helpers import NOW, record

R = t.audit_records
Tamper = Callable[[Store], Awaitable[None]]


async def write_log(store: Store, tmp_path: Path, count: int = 20, every: int = 1000) -> None:
    create_audit_key(tmp_path / "audit.key", tmp_path / "audit.pub")
    checkpointer = Checkpointer(load_audit_key(tmp_path / "audit.key"),
                                path=tmp_path / "checkpoints.jsonl", database=store,
                                every=every)
    writer = AuditWriter(node="gw1", sinks=[DatabaseSink(store, "gw1")],
                         spool_path=tmp_path / "spool", checkpointer=checkpointer)
    await writer.start()
    for n in range(count):
        writer.emit(record(n))
        if n % 7 == 6:
            await writer.flush()
    await writer.close()  # the shutdown checkpoint covers seq 20


async def verify(store: Store, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return await verify_audit(store, public_key=load_audit_public_key(tmp_path / "audit.pub"),
                              checkpoint_file=tmp_path / "checkpoints.jsonl", **kwargs)


async def execute(store: Store, *statements: object) -> None:
    async with store._engine.begin() as conn:
        for statement in statements:
            await conn.execute(statement)  # type: ignore[arg-type]


def at_seq(seq: int) -> object:
    return (R.c.node == "gw1") & (R.c.seq == seq)


async def edit(store: Store) -> None:
    await execute(store, update(R).where(at_seq(5)).values(user="mallory"))


async def delete_middle(store: Store) -> None:
    await execute(store, delete(R).where(at_seq(5)))


async def insert_forged(store: Store) -> None:
    async with store._engine.begin() as conn:
        prev = (await conn.execute(select(R.c.hash).where(at_seq(4)))).scalar_one()
        for seq in range(20, 4, -1):  # one by one from the end: (node, seq) stays unique
            await conn.execute(update(R).where(at_seq(seq)).values(seq=seq + 1))
    forged = {**record(99, user="mallory").fields(), "node": "gw1", "seq": 5, "prev_hash": prev}
    forged["hash"] = hash_of(prev, forged)
    await store.append_audit([forged])


async def swap(store: Store) -> None:
    await execute(store, update(R).where(at_seq(5)).values(seq=-1),
                  update(R).where(at_seq(6)).values(seq=5),
                  update(R).where(at_seq(-1)).values(seq=6))


async def truncate_tail(store: Store) -> None:
    await execute(store, delete(R).where((R.c.node == "gw1") & (R.c.seq >= 18)),
                  delete(t.audit_checkpoints))  # the table's checkpoints go too: the file stays


@pytest.mark.parametrize(("tamper", "seq", "kind"), [
    (edit, 5, "edited"), (delete_middle, 5, "removed"), (insert_forged, 5, "inserted"),
    (swap, 5, "reordered"), (truncate_tail, 18, "truncated"),
], ids=["edit", "delete", "insert", "swap", "truncate"])
async def test_tampering_with_the_table_is_found(store: Store, tmp_path: Path, tamper: Tamper,
                                                 seq: int, kind: str) -> None:
    await write_log(store, tmp_path)
    assert (await verify(store, tmp_path)).ok
    await tamper(store)
    result = await verify(store, tmp_path)
    [node] = result.nodes
    assert not result.ok and node.node == "gw1"
    assert (node.breaks[0].seq, node.breaks[0].kind) == (seq, kind), node.breaks


async def test_an_untouched_log_verifies_with_its_checkpoints(store: Store,
                                                              tmp_path: Path) -> None:
    await write_log(store, tmp_path, count=25, every=10)
    result = await verify(store, tmp_path)
    [node] = result.nodes
    assert result.ok and (node.records, node.first_seq, node.last_seq) == (25, 1, 25)
    # After the batch that passed 10 records (flushes end at 7, 14, 21), and at shutdown.
    assert [c["seq"] for c in await store.audit_checkpoints("gw1")] == [14, 25]
    assert node.checkpoints == 2
    since = await verify(store, tmp_path, since=NOW + timedelta(milliseconds=12))
    assert since.ok and since.nodes[0].first_seq == 13 and since.nodes[0].records == 13


async def test_a_table_with_an_extra_checkpoint_row_is_refused(store: Store,
                                                               tmp_path: Path) -> None:
    await write_log(store, tmp_path)
    await execute(store, insert(t.audit_checkpoints).values(
        node="gw1", seq=3, hash="0" * 64, at=NOW, signature="AAAA"))
    result = await verify(store, tmp_path)
    assert [(b.seq, b.kind) for b in result.nodes[0].breaks] == [(3, "bad-signature")]


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "-3d"])
def test_a_bad_since_is_one_sentence(text: str) -> None:
    with pytest.raises(ManageError, match="neither a duration"):
        parse_since(text, NOW)


def test_since_takes_durations_and_iso_times() -> None:
    assert parse_since("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_since("2026-11-01", NOW).isoformat() == "2026-11-01T00:00:00+00:00"
