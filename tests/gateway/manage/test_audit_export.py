"""``export_audit`` from a real table (SQLite and PostgreSQL) and ``verify_bundle`` with
only the public key: round trips in both formats, ranges anchored on checkpoints,
and every kind of change to a bundle found, naming node and seq."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete

from gateway.audit.bundle import rows_from_csv
from gateway.audit.bundle_check import BundleResult
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.keys import create_audit_key, load_audit_key, load_audit_public_key
from gateway.audit.record import AuditRecord
from gateway.audit.sinks import DatabaseSink
from gateway.audit.writer import AuditWriter
from gateway.manage.audit_export import export_audit, sidecar_of, verify_bundle
from gateway.manage.errors import ManageError
from gateway.store import tables as t
from gateway.store.store import Store
from tests.gateway.audit.helpers import NOW, record, stored


def minute(n: int, **kwargs: object) -> AuditRecord:
    """Record n, n minutes after NOW."""
    return record(n, **kwargs)._replace(at=NOW + timedelta(minutes=n))  # type: ignore[arg-type]


async def write_chain(store: Store, tmp_path: Path, records: list[AuditRecord], *,
                      every: int = 5) -> None:
    """The records as node gw1 writes them, a checkpoint after every ``every``."""
    create_audit_key(tmp_path / "audit.key", tmp_path / "audit.pub")
    checkpointer = Checkpointer(load_audit_key(tmp_path / "audit.key"),
                                path=tmp_path / "checkpoints.jsonl", database=store,
                                every=every)
    writer = AuditWriter(node="gw1", sinks=[DatabaseSink(store, "gw1")],
                         spool_path=tmp_path / "spool", checkpointer=checkpointer)
    await writer.start()
    for n, item in enumerate(records, 1):
        writer.emit(item)
        if n % every == 0:
            await writer.flush()
    await writer.close()


async def export(store: Store, tmp_path: Path, name: str = "bundle.jsonl", **kwargs: object
                 ) -> Path:
    out = tmp_path / "out" / name
    out.parent.mkdir(exist_ok=True)
    args: dict[str, object] = {"fmt": "csv" if name.endswith(".csv") else "jsonl",
                               "since": None, "until": None, "now": NOW + timedelta(days=1),
                               "checkpoint_file": tmp_path / "checkpoints.jsonl", **kwargs}
    await export_audit(store, out=out, **args)  # type: ignore[arg-type]
    return out


def check(path: Path, tmp_path: Path) -> BundleResult:
    return verify_bundle(path, load_audit_public_key(tmp_path / "audit.pub"))[0]


def first_break(result: BundleResult) -> tuple[str, int, str]:
    node = next(n for n in result.nodes if n.breaks)
    return node.node, node.breaks[0].seq, node.breaks[0].kind


async def test_a_jsonl_export_holds_every_record_and_verifies(store: Store,
                                                              tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(12)])
    out = await export(store, tmp_path)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(os.listdir(out.parent)) == ["bundle.jsonl"]  # no temporary file left
    lines = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["kind"] for line in lines] == \
        ["header"] + ["checkpoint"] * 3 + ["record"] * 12 + ["end"]
    assert lines[0]["nodes"] == [{"node": "gw1", "first_seq": 1, "last_seq": 12}]
    records = [{k: v for k, v in line.items() if k != "kind"} for line in lines[4:16]]
    assert records == await stored(store, "gw1")
    result = check(out, tmp_path)
    assert result.ok, result.to_json()
    [node] = result.nodes
    assert (node.records, node.first_seq, node.last_seq, node.checkpoints) == (12, 1, 12, 3)
    assert node.notes == ["chain verified from seq 1 (the start of the node's chain)"]


async def test_a_csv_export_round_trips_every_value(store: Store, tmp_path: Path) -> None:
    odd = [minute(0, path='/a,"b"\n=c', user=""), minute(1, user="'quoted"),
           minute(2, user=None), minute(3, path="/ü=1", user='=HYPERLINK("x")')]
    await write_chain(store, tmp_path, odd, every=2)
    out = await export(store, tmp_path, "review.csv")
    assert sorted(os.listdir(out.parent)) == ["review.csv", "review.csv.bundle.jsonl"]
    text = out.read_text()
    assert text.startswith("node,seq,at,type,reference,user,")
    assert '"\'=HYPERLINK(""x"")"' in text and "\"''quoted\"" in text  # no formula runs
    with out.open("rb") as file:
        rows = [row for _, row in rows_from_csv(file, hashlib.sha256())]
    assert rows == await stored(store, "gw1")  # None and "" kept apart, numbers typed
    result = check(out, tmp_path)
    assert result.ok, result.to_json()
    assert check(sidecar_of(out), tmp_path).ok  # either file names the pair


async def test_a_range_is_widened_to_the_checkpoints_around_it(store: Store,
                                                               tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(1, 21)])  # cps 5, 10, 15, 20
    out = await export(store, tmp_path, since=NOW + timedelta(minutes=7),
                       until=NOW + timedelta(minutes=13))
    header = json.loads(out.read_bytes().splitlines()[0])
    assert header["nodes"] == [{"node": "gw1", "first_seq": 5, "last_seq": 15}]
    result = check(out, tmp_path)
    assert result.ok, result.to_json()
    assert result.nodes[0].notes == [
        "chain verified from seq 5, anchored by the signed checkpoint at seq 5"]
    assert result.nodes[0].checkpoints == 3


async def test_a_range_without_a_checkpoint_before_it_starts_at_seq_1(
        store: Store, tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(1, 13)], every=100)
    out = await export(store, tmp_path, since=NOW + timedelta(minutes=4),
                       until=NOW + timedelta(minutes=6))
    header = json.loads(out.read_bytes().splitlines()[0])
    assert header["nodes"] == [{"node": "gw1", "first_seq": 1, "last_seq": 12}]
    result = check(out, tmp_path)
    assert result.ok, result.to_json()
    assert result.nodes[0].notes[0] == \
        "chain verified from seq 1 (the start of the node's chain)"


def rewrite(path: Path, change: object) -> None:
    """Apply ``change`` to the parsed lines and write the bundle back with a correct end
    line: the careful forger who recomputes the bundle's own digest."""
    from gateway.audit import bundle

    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    lines = change(lines)  # type: ignore[operator]
    body = b"".join(bundle.line(line) for line in lines if line["kind"] != "end")
    end = {"kind": "end", "records": sum(line["kind"] == "record" for line in lines),
           "checkpoints": sum(line["kind"] == "checkpoint" for line in lines),
           "sha256": hashlib.sha256(body).hexdigest()}
    path.write_bytes(body + bundle.line(end))


def edit_user(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    for line in lines:
        if line["kind"] == "record" and line["seq"] == 7:
            line["user"] = "mallory"
    return lines


def drop_seq(seq: int) -> object:
    return lambda lines: [x for x in lines if not (x["kind"] == "record" and x["seq"] == seq)]


def cut_tail(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    lines[0]["nodes"][0]["last_seq"] = 17  # type: ignore[index]
    return [x for x in lines if not (x["kind"] == "record" and x["seq"] > 17)]  # type: ignore[operator]


def cut_head(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    lines[0]["nodes"][0]["first_seq"] = 3  # type: ignore[index]
    return [x for x in lines if not (x["kind"] == "record" and x["seq"] < 3)]  # type: ignore[operator]


@pytest.mark.parametrize(("change", "seq", "kind"), [
    (edit_user, 7, "edited"), (drop_seq(7), 7, "removed"), (cut_tail, 18, "truncated"),
    (cut_head, 3, "removed"), (drop_seq(1), 1, "removed"),
], ids=["edit", "remove", "cut-tail", "cut-head", "remove-first"])
async def test_a_reforged_bundle_is_caught_by_its_chain_and_signatures(
        store: Store, tmp_path: Path, change: object, seq: int, kind: str) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(20)])
    out = await export(store, tmp_path)
    rewrite(out, change)
    result = check(out, tmp_path)
    assert not result.ok and not result.problems  # the bundle's own digest was redone
    assert first_break(result)[:2] == ("gw1", seq), result.to_json()
    assert any(b.kind == kind for b in result.nodes[0].breaks), result.to_json()


async def test_a_bundle_cut_short_is_named(store: Store, tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(20)])
    out = await export(store, tmp_path)
    data = out.read_bytes()
    cut = data.index(b'"reference":"00000000000e"')  # record 15 (n = 14)
    out.write_bytes(data[:cut])  # the file ends inside record 15
    result = check(out, tmp_path)
    assert "the bundle has no end line: it was cut short" in result.problems
    assert first_break(result) == ("gw1", 15, "truncated")


@pytest.mark.parametrize("name", ["bundle.jsonl", "bundle.csv"])
async def test_one_changed_byte_anywhere_fails(store: Store, tmp_path: Path,
                                               name: str) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(8)], every=4)
    out = await export(store, tmp_path, name)
    files = [out, sidecar_of(out)] if name.endswith(".csv") else [out]
    for path in files:
        original = path.read_bytes()
        for at in range(0, len(original), 11):
            changed = bytearray(original)
            changed[at] ^= 0x01
            path.write_bytes(bytes(changed))
            result = check(out, tmp_path)
            assert not result.ok, (path.name, at, chr(original[at]))
        path.write_bytes(original)
    assert check(out, tmp_path).ok


async def test_a_changed_record_byte_names_node_and_seq(store: Store, tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(8)], every=4)
    out = await export(store, tmp_path)
    data = bytearray(out.read_bytes())
    at = data.index(b'"reference":"000000000005"') + len('"reference":"00000000000')
    data[at] = ord("6")  # record 6 now claims record 7's reference
    out.write_bytes(bytes(data))
    result = check(out, tmp_path)
    assert first_break(result) == ("gw1", 6, "edited")
    assert any("SHA-256" in p for p in result.problems)


async def test_a_table_cut_behind_the_admins_back_exports_as_broken(
        store: Store, tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(20)])
    async with store._engine.begin() as conn:
        await conn.execute(delete(t.audit_records).where(t.audit_records.c.seq > 16))
    out = await export(store, tmp_path)  # the checkpoint file still names seq 20
    assert first_break(check(out, tmp_path)) == ("gw1", 17, "truncated")


async def test_an_existing_file_is_refused_unless_forced(store: Store, tmp_path: Path) -> None:
    await write_chain(store, tmp_path, [minute(n) for n in range(3)])
    out = await export(store, tmp_path, "a.csv")
    sidecar_of(out).unlink()
    with pytest.raises(ManageError, match="a.csv already exists; pass --force"):
        await export(store, tmp_path, "a.csv")
    assert not sidecar_of(out).exists()  # nothing written when refused
    await export(store, tmp_path, "a.csv", force=True)
    assert check(out, tmp_path).ok


def test_a_missing_or_foreign_file_is_one_sentence(tmp_path: Path) -> None:
    create_audit_key(tmp_path / "audit.key", tmp_path / "audit.pub")
    key = load_audit_public_key(tmp_path / "audit.pub")
    with pytest.raises(ManageError, match="no bundle file at"):
        verify_bundle(tmp_path / "none.jsonl", key)
    (tmp_path / "notes.txt").write_bytes(b"\x00\xffhello\n")
    result, _ = verify_bundle(tmp_path / "notes.txt", key)
    assert not result.ok and result.problems[0] == \
        "the first line is not the header of a certgate audit bundle"
