"""The JSONL audit writer: every record lands once, in order, in a 0600 file; a moved
file (log rotation) is followed; a failing disk loses nothing."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.chain import GENESIS
from gateway.audit.writer import AuditRecord, AuditWriter

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def record(n: int, *, path: str = "/") -> AuditRecord:
    return AuditRecord(reference=f"{n:012x}", at=NOW, decision="allow", reason="allowed",
                       rule="wiki:allow[0]", app="wiki", user="alice", serial="01AB",
                       fingerprint="ab" * 32, method="GET", host="wiki.example.test",
                       path=path, source_ip="192.0.2.7", status=200, duration_ms=0.5)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_records_are_written_in_order_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    writer = AuditWriter(path)
    for n in range(2500):  # more than one batch
        writer.emit(record(n, path="/ünïcode/\"quoted\"\n"))
    assert len(writer) == 2500
    await writer.close()
    got = lines(path)
    assert [g["reference"] for g in got] == [f"{n:012x}" for n in range(2500)]
    assert got[0]["path"] == "/ünïcode/\"quoted\"\n"  # escaped, one record per line
    assert got[0]["at"] == "2026-11-24T12:00:00.000Z"
    assert [g["seq"] for g in got] == list(range(1, 2501))  # chained, in order
    assert got[0]["prev_hash"] == GENESIS and got[1]["prev_hash"] == got[0]["hash"]
    assert writer.written == 2500 and len(writer) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_rotated_file_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(path)
    writer.emit(record(1))
    await writer.flush()
    path.rename(tmp_path / "audit.jsonl.1")  # what logrotate does
    writer.emit(record(2))
    await writer.close()
    assert [g["reference"] for g in lines(tmp_path / "audit.jsonl.1")] == [f"{1:012x}"]
    assert [g["reference"] for g in lines(path)] == [f"{2:012x}"]


async def test_a_failing_disk_keeps_every_record_for_later(tmp_path: Path) -> None:
    blocker = tmp_path / "audit"
    blocker.write_text("a file where the audit directory should be")
    writer = AuditWriter(blocker / "audit.jsonl")
    for n in range(3):
        writer.emit(record(n))
    with pytest.raises(OSError):
        await writer.flush()
    assert len(writer) == 3 and writer.written == 0  # nothing dropped
    blocker.unlink()
    await writer.close()
    assert [g["reference"] for g in lines(blocker / "audit.jsonl")] == [
        f"{n:012x}" for n in range(3)]


def refs(path: Path) -> list[object]:
    return [g["reference"] for g in lines(path)]


def expected(numbers: range) -> list[str]:
    return [f"{n:012x}" for n in numbers]


async def test_overflow_goes_to_the_spool_and_lands_in_order_when_the_log_recovers(
        tmp_path: Path) -> None:
    path, spool = tmp_path / "audit.jsonl", tmp_path / "audit-spool.jsonl"
    path.mkdir()  # a directory where the file should be: fails as root too
    writer = AuditWriter(path, spool_path=spool, memory_limit=2, clock=lambda: NOW)
    for n in range(5):
        writer.emit(record(n))
    with pytest.raises(OSError):
        await writer.flush()
    assert writer.failing and writer.failing_since == NOW
    assert "Is a directory" in (writer.last_error or "")
    assert len(writer) == 2 and refs(spool) == expected(range(3))  # the oldest spilled
    assert writer.spooled == 5
    for n in range(5, 8):
        writer.emit(record(n))
    with pytest.raises(OSError):
        await writer.flush()
    assert refs(spool) == expected(range(6)) and writer.spooled == 8
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    path.rmdir()
    await writer.flush()
    assert refs(path) == expected(range(8))
    assert not spool.exists()
    assert not writer.failing and writer.last_error is None and writer.spooled == 0


async def test_a_backlog_of_many_slices_is_written_by_one_flush_in_order(
        tmp_path: Path) -> None:
    # batch_size 2: slices of 8 records, so 300 records are 38 slices, more than a
    # flush chains beside its writes for what is emitted meanwhile (PIPELINE_ROUNDS).
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(path, batch_size=2)
    for n in range(300):
        writer.emit(record(n))
    await writer.flush()
    assert len(writer) == 0 and writer.written == 300
    got = lines(path)
    assert [g["reference"] for g in got] == expected(range(300))
    assert [g["seq"] for g in got] == list(range(1, 301))
    await writer.close()


async def test_a_backlog_that_fails_is_chained_whole_and_its_overflow_spooled(
        tmp_path: Path) -> None:
    # Only one slice (8) is chained before the write fails; the rest of the queue is
    # chained then, so that everything beyond memory_limit can go to the spool.
    path, spool = tmp_path / "audit.jsonl", tmp_path / "audit-spool.jsonl"
    path.mkdir()
    writer = AuditWriter(path, spool_path=spool, memory_limit=5, batch_size=2)
    for n in range(100):
        writer.emit(record(n))
    with pytest.raises(OSError):
        await writer.flush()
    assert len(writer) == 5 and refs(spool) == expected(range(95)) and writer.spooled == 100
    path.rmdir()
    await writer.flush()
    assert refs(path) == expected(range(100)) and not spool.exists()
    assert [g["seq"] for g in lines(path)] == list(range(1, 101))
    await writer.close()


async def test_with_the_spool_unwritable_too_memory_keeps_everything(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directories should be")
    path = blocker / "audit.jsonl"
    writer = AuditWriter(path, spool_path=blocker / "spool.jsonl", memory_limit=1)
    for n in range(4):
        writer.emit(record(n))
    with pytest.raises(OSError):
        await writer.flush()
    assert len(writer) == 4 and writer.spooled == 4
    blocker.unlink()
    await writer.close()
    assert refs(path) == expected(range(4))


async def test_close_while_failing_spools_and_the_next_start_writes_it_first(
        tmp_path: Path) -> None:
    path, spool = tmp_path / "audit.jsonl", tmp_path / "audit-spool.jsonl"
    path.mkdir()
    writer = AuditWriter(path, spool_path=spool)
    for n in range(3):
        writer.emit(record(n))
    await writer.close()  # no raise: the records went to the spool
    assert refs(spool) == expected(range(3))
    path.rmdir()
    restarted = AuditWriter(path, spool_path=spool)
    assert restarted.spooled == 3
    restarted.emit(record(3))
    await restarted.close()
    assert refs(path) == expected(range(4)) and not spool.exists()


async def test_the_run_loop_retries_until_the_log_recovers(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.mkdir()
    writer = AuditWriter(path, spool_path=tmp_path / "spool", flush_interval=0.01,
                         retry_interval=0.01)
    task = asyncio.create_task(writer.run())
    try:
        writer.emit(record(0))
        while not writer.failing:
            await asyncio.sleep(0.01)
        path.rmdir()
        while writer.failing:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.wait({task})
    await writer.close()
    assert refs(path) == expected(range(1))


async def test_a_record_that_cannot_be_encoded_keeps_its_place_in_the_chain(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(path)
    writer.emit(record(0))
    writer.emit(record(1)._replace(detail={"x": object()}))  # JSON can't take it
    writer.emit(record(2)._replace(user="\udcff"))  # a lone surrogate: not UTF-8
    writer.emit(record(3))
    await writer.close()
    got = lines(path)
    assert [g["seq"] for g in got] == [1, 2, 3, 4]  # no gap, nothing dropped
    assert [g["type"] for g in got] == ["access", "audit.unencodable", "audit.unencodable",
                                        "access"]
    assert [g["reference"] for g in got] == expected(range(4))


async def test_a_stop_that_meets_a_wake_up_still_stops_the_writer(tmp_path: Path) -> None:
    """The gateway stops the writer by cancelling ``run`` and waiting for it. A cancel
    that lands in the loop turn where the wake-up has fired but ``run`` has not resumed
    yet must still end it (Python 3.11's ``asyncio.wait_for`` returned the wake-up's
    result instead and swallowed the cancel: ``run`` went on and the shutdown, or the
    throughput benchmark, waited for ever). Every turn from 0 to 7 is tried; no clock."""
    swallowed = []
    for turns in range(8):
        writer = AuditWriter(tmp_path / f"audit-{turns}.jsonl", flush_interval=3600,
                             batch_size=1)
        task = asyncio.create_task(writer.run())
        await asyncio.sleep(0)  # run() is waiting for its wake-up
        writer.emit(record(turns))  # a full batch: the wake-up
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(50):  # loop turns, not time: a cancelled run ends in two or three
            if task.done():
                break
            await asyncio.sleep(0)
        if not task.done():
            swallowed.append(turns)
            task.cancel()  # the second cancel finds it waiting again and ends it
        await asyncio.wait({task})
        assert task.cancelled()
        await writer.close()
        assert [line["reference"] for line in lines(writer.path)] == [f"{turns:012x}"]
    assert swallowed == [], f"cancel swallowed when it came {swallowed} turn(s) after the wake-up"
