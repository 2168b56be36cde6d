"""The audit writer: every decision becomes one JSON line, written off the request path.

``emit`` only appends to an in-memory queue (O(1), never awaits); a background task
writes batches from a worker thread so the event loop never blocks on disk.
``close`` drains everything, so a graceful shutdown loses nothing. (A later step
moves this into the hash-chained database log; the record shape stays.)

Must not block, and must not drop records silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("certgate.audit")
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class AuditRecord(NamedTuple):
    """One decision. A NamedTuple: immutable, and four times cheaper to build per
    request than a frozen dataclass (whose ``__init__`` goes through
    ``object.__setattr__`` field by field)."""

    reference: str
    at: datetime
    decision: str
    reason: str
    rule: str | None
    app: str | None
    user: str | None
    serial: str | None
    fingerprint: str | None
    method: str
    host: str
    path: str
    source_ip: str
    status: int
    duration_ms: float

    def to_json(self) -> str:
        # A dict literal, not dataclasses.asdict (which deep-copies recursively and
        # showed up in the profile at ~4% of a gateway under load).
        return _ENCODE({
            "reference": self.reference, "at": self.at.isoformat(), "decision": self.decision,
            "reason": self.reason, "rule": self.rule, "app": self.app, "user": self.user,
            "serial": self.serial, "fingerprint": self.fingerprint, "method": self.method,
            "host": self.host, "path": self.path, "source_ip": self.source_ip,
            "status": self.status, "duration_ms": self.duration_ms,
        })


class AuditWriter:
    def __init__(self, path: Path, *, flush_interval: float = 0.2, batch_size: int = 1024
                 ) -> None:
        self.path = path
        self._queue: deque[AuditRecord] = deque()
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self.written = 0
        self._fd: int | None = None
        self._lock = threading.Lock()

    def emit(self, record: AuditRecord) -> None:
        """Queue a record; never blocks. The deque is unbounded on purpose: memory
        grows under a disk stall rather than losing audit records."""
        self._queue.append(record)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def _write(self, data: bytes) -> None:
        """Runs in a worker thread. Only ``os`` calls, which release the GIL, so the
        event loop keeps running while the disk works. The file stays open between
        batches and is reopened when it was moved away (log rotation). The lock keeps
        batches whole and in order when a shutdown flush overlaps a cancelled one."""
        with self._lock:
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        if self._fd is not None:
            try:
                moved = os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
            except FileNotFoundError:
                moved = True
            if moved:
                os.close(self._fd)
                self._fd = None
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    async def flush(self) -> None:
        while self._queue:
            records = [self._queue.popleft()
                       for _ in range(min(len(self._queue), self._batch_size * 4))]
            data = "".join([r.to_json() + "\n" for r in records]).encode("utf-8")
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                # Put the batch back in front and retry later: nothing is lost.
                log.error("cannot write the audit log %s: %s", self.path, exc)
                self._queue.extendleft(reversed(records))
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self._close_file)  # reopen on the retry
                raise
            self.written += len(records)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except OSError:
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self._close_file)

    def _close_file(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        return len(self._queue)
