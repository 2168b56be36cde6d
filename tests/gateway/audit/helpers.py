"""What the audit tests share: a record factory and a database that can be switched off."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.chain import FIELDS, format_at
from gateway.audit.checkpoint import Checkpoint
from gateway.audit.record import AuditRecord
from gateway.audit.sinks import DatabaseSink
from gateway.audit.writer import AuditWriter
from gateway.store.errors import DatabaseUnavailableError
from gateway.store.store import Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def record(n: int, *, path: str = "/", user: str | None = "alice") -> AuditRecord:
    return AuditRecord(reference=f"{n:012x}", at=NOW + timedelta(milliseconds=n),
                       decision="allow", reason="allowed", rule="wiki:allow[0]", app="wiki",
                       user=user, serial="01AB", fingerprint="ab" * 32, method="GET",
                       host="wiki.example.test", path=path, source_ip="192.0.2.7", status=200,
                       duration_ms=0.5)


class FlakyDatabase:
    """The store's audit methods, refusing while ``down`` (as an unreachable database
    does); ``lose_ack`` commits one batch but answers with an error."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.lose_ack = False

    def _check(self) -> None:
        if self.down:
            raise DatabaseUnavailableError("cannot reach the database at test: refused")

    async def audit_head(self, node: str) -> tuple[int, str] | None:
        self._check()
        return await self.store.audit_head(node)

    async def append_audit(self, rows: list[dict[str, Any]]) -> None:
        self._check()
        await self.store.append_audit(rows)
        if self.lose_ack:
            self.lose_ack = False
            raise DatabaseUnavailableError("cannot reach the database at test: connection lost")

    async def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._check()
        await self.store.append_checkpoint(checkpoint)


async def fill(store: Store, tmp_path: Path, records: list[AuditRecord]) -> None:
    """``records`` chained by a real writer (node gw1) into ``store``'s audit table."""
    writer = AuditWriter(node="gw1", sinks=[DatabaseSink(store, "gw1")],
                         spool_path=tmp_path / "spool.jsonl")
    await writer.start()
    for rec in records:
        writer.emit(rec)
    await writer.close()


async def stored(store: Store, node: str) -> list[dict[str, Any]]:
    return [row async for page in store.audit_rows(node) for row in page]


def stored_row(node: str, seq: int, minutes: int, **fields: Any) -> dict[str, Any]:
    """A stored record (hashes are not checked by search)."""
    base: dict[str, Any] = {name: None for name in FIELDS}
    base.update(node=node, seq=seq, at=format_at(NOW + timedelta(minutes=minutes)),
                type="access", reference=f"{node}{seq:04d}", user="alice", app="wiki",
                decision="allow", reason="allowed", serial="01AB", path="/",
                prev_hash="0" * 64, hash="1" * 64)
    base.update(fields)
    return base


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``path`` made immutable (``chattr +i``): refused even to root, who the tests run
    as and whom a chmod does not stop. Skips where the file system or the container
    does not allow it."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
