"""Retention: old records go only behind a signed checkpoint (in the table and the
file), the deletion is itself a record, and what remains still verifies; a prefix
removed without such an anchor is still caught as tampering."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.assembly import build_audit_writer
from gateway.audit.chain import Chain, ChainRow
from gateway.audit.checkpoint import checkpoint_line, sign_checkpoint, signature_ok
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.record import AuditRecord
from gateway.audit.retention import Retention
from gateway.audit.sinks import DatabaseSink
from gateway.audit.verify import NodeVerifier
from gateway.audit.writer import AuditWriter
from gateway.cli.main import main
from gateway.config import Config
from gateway.manage.audit import verify_audit
from gateway.store.store import Store
from tests.gateway.audit.helpers import NOW, record, stored
from tests.gateway.audit.serving import serving
from tests.gateway.conftest import Template

KEY = Ed25519PrivateKey.generate()


def chain(count: int) -> list[ChainRow]:
    links = Chain("gw1")
    return [links.link(record(n).fields()) for n in range(count)]


def verify_rows(rows: list[ChainRow], checkpoints: list[dict[str, object]]) -> NodeVerifier:
    good = {int(str(cp["seq"])): str(cp["hash"]) for cp in checkpoints
            if signature_ok(KEY.public_key(), cp)}
    verifier = NodeVerifier("gw1", checkpoint_seqs=[int(str(cp["seq"])) for cp in checkpoints],
                            anchors=good)
    verifier.feed(rows)
    verifier.finish(checkpoints, lambda cp: signature_ok(KEY.public_key(), cp))
    return verifier


def test_a_prefix_behind_a_signed_checkpoint_verifies_and_one_without_is_removed() -> None:
    rows = chain(20)
    cp = sign_checkpoint(KEY, "gw1", 10, rows[9]["hash"], NOW)
    anchored = verify_rows(rows[10:], [cp])
    assert anchored.result.ok and anchored.anchored == 10
    assert anchored.result.first_seq == 11 and anchored.result.records == 10
    assert "no audit.retention record" in anchored.result.notes[0]

    cut_elsewhere = verify_rows(rows[7:], [cp])  # records 1-7 gone, no checkpoint at 7
    assert [(b.seq, b.kind) for b in cut_elsewhere.result.breaks] == [(1, "removed")]

    forged = sign_checkpoint(Ed25519PrivateKey.generate(), "gw1", 10, rows[9]["hash"], NOW)
    unsigned = verify_rows(rows[10:], [forged])  # an anchor the audit key did not sign
    assert unsigned.result.breaks[0].kind == "removed"

    wrong = sign_checkpoint(KEY, "gw1", 10, rows[8]["hash"], NOW)  # signed, other hash
    assert verify_rows(rows[10:], [wrong]).result.breaks[0].kind == "removed"


def writer_for(store: Store, tmp_path: Path) -> AuditWriter:
    checkpointer = Checkpointer(KEY, path=tmp_path / "checkpoints.jsonl", database=store,
                                every=10)
    return AuditWriter(node="gw1", sinks=[DatabaseSink(store, "gw1")],
                       spool_path=tmp_path / "spool.jsonl", checkpointer=checkpointer)


def old_record(n: int, age: timedelta) -> AuditRecord:
    return record(n)._replace(at=NOW - age + timedelta(milliseconds=n))


async def test_retention_deletes_behind_the_checkpoint_records_it_and_still_verifies(
        store: Store, tmp_path: Path) -> None:
    writer = writer_for(store, tmp_path)
    await writer.start()
    for n in range(25):  # 25 old records: checkpoints at 10 and 20
        writer.emit(old_record(n, timedelta(days=500)))
        if n % 10 == 9:
            await writer.flush()
    await writer.flush()
    for n in range(25, 30):  # and 5 recent ones
        writer.emit(old_record(n, timedelta(days=1)))
    await writer.flush()
    cps = [c["seq"] for c in await store.audit_checkpoints("gw1")]
    assert cps == [10, 20, 30]
    retention = Retention(store, node="gw1", keep=timedelta(days=400),
                          public_key=KEY.public_key(),
                          checkpoint_file=tmp_path / "checkpoints.jsonl",
                          emit=writer.emit, clock=lambda: NOW)
    # Records 21-25 are old too, but no checkpoint covers them: they stay.
    assert await retention.prune() == 20
    await writer.close()
    rows = await stored(store, "gw1")
    assert [r["seq"] for r in rows] == list(range(21, 32))
    [note] = [r for r in rows if r["type"] == "audit.retention"]
    detail = json.loads(note["detail"])
    assert (detail["deleted"], detail["from_seq"], detail["through_seq"]) == (20, 1, 20)
    assert detail["checkpoint"]["seq"] == 20 and signature_ok(KEY.public_key(),
                                                              {**detail["checkpoint"],
                                                               "node": "gw1"})

    result = await verify_audit(store, public_key=KEY.public_key(),
                                checkpoint_file=tmp_path / "checkpoints.jsonl")
    [node] = result.nodes
    assert node.ok, node.breaks
    assert node.notes == ["records 1 to 20 were deleted by retention, behind the signed "
                          "checkpoint at seq 20"]
    assert await retention.prune() == 0  # nothing more is old enough behind a checkpoint

    # Now tampering: someone removes 21-23 (no checkpoint at 23 to anchor on).
    await store.delete_audit_through("gw1", 23)
    [node] = (await verify_audit(store, public_key=KEY.public_key(),
                                 checkpoint_file=tmp_path / "checkpoints.jsonl")).nodes
    assert [(b.seq, b.kind) for b in node.breaks][:1] == [(1, "removed")]


async def test_retention_needs_the_checkpoint_in_the_file_and_matching_the_log(
        store: Store, tmp_path: Path) -> None:
    writer = writer_for(store, tmp_path)
    await writer.start()
    for n in range(20):
        writer.emit(old_record(n, timedelta(days=500)))
        if n % 10 == 9:
            await writer.flush()
    await writer.close()
    cp_file = tmp_path / "checkpoints.jsonl"
    retention = Retention(store, node="gw1", keep=timedelta(days=400),
                          public_key=KEY.public_key(), checkpoint_file=cp_file,
                          emit=writer.emit, clock=lambda: NOW)
    saved = cp_file.read_bytes()
    cp_file.write_bytes(b"")  # a checkpoint only in the table the admin controls
    assert await retention.prune() == 0
    cp_file.write_bytes(saved)
    # Another node's checkpoint in the file never anchors gw1.
    other = sign_checkpoint(KEY, "gw2", 20, "0" * 64, NOW)
    cp_file.write_bytes(saved + checkpoint_line(other))
    assert await retention.anchor(NOW) is not None
    fake = Retention(store, node="gw1", keep=timedelta(days=400),
                     public_key=Ed25519PrivateKey.generate().public_key(),
                     checkpoint_file=cp_file, emit=writer.emit, clock=lambda: NOW)
    assert await fake.prune() == 0  # checkpoints not signed by this key: no anchor
    assert len(await stored(store, "gw1")) == 20
    # Records not yet old enough are never deleted, checkpoint or not.
    young = Retention(store, node="gw1", keep=timedelta(days=600),
                      public_key=KEY.public_key(), checkpoint_file=cp_file,
                      emit=writer.emit, clock=lambda: NOW)
    assert await young.anchor(NOW) is None


async def test_a_running_gateway_prunes_at_start_and_what_remains_verifies(
        tmp_path: Path, gateway_template: Template) -> None:
    async def old_history(config: Config) -> None:
        store = await Store.open(config.database_url)
        try:
            writer = build_audit_writer(config, store)
            await writer.start()
            for n in range(30):  # checkpoints every 10 (the serving helper's setting)
                writer.emit(old_record(n, timedelta(days=500)))
                if n % 10 == 9:
                    await writer.flush()
            await writer.close()
        finally:
            await store.close()

    async with serving(tmp_path, gateway_template, before_start=old_history,
                       retention="400d") as gw:
        node = gw.runtime.audit.node

        async def pruned() -> bool:
            store = await gw.store()
            try:
                rows = await stored(store, node)
            finally:
                await store.close()
            return any(r["type"] == "audit.retention" for r in rows)

        await gw.wait_for(pruned, 10)
        [health] = [t for t in gw.runtime.tasks if t.name == "audit retention"]
        assert health.problem() is None
        status, _, _ = await gw.request("GET", "/after-retention")
        assert status == 200
        config_path = gw.config_path
    store = await Store.open(f"sqlite+aiosqlite:///{gw.data_dir / 'certgate.db'}", migrate=False)
    try:
        rows = await stored(store, node)
    finally:
        await store.close()
    assert rows[0]["seq"] == 31  # 1-30 went, behind the checkpoint at 30
    code = await asyncio.to_thread(main, ["--config", str(config_path), "audit", "verify"])
    assert code == 0
