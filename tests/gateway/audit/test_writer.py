"""The JSONL audit writer: every record lands once, in order, in a 0600 file; a moved
file (log rotation) is followed; a failing disk loses nothing."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

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
    assert got[0]["at"] == NOW.isoformat()
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
