"""The audit writer: every decision becomes one JSON line, written off the request path.

``emit`` only appends to an in-memory queue (O(1), never awaits); a background task
writes batches from a worker thread so the event loop never blocks on disk.
``close`` drains everything, so a graceful shutdown loses nothing. (A later step
moves this into the hash-chained database log; the record shape stays.)

When the audit log can't be written (disk full, the file replaced by a directory,
its directory gone), nothing is dropped:

- records stay queued in memory, in order, up to ``memory_limit``;
- beyond that the oldest go to the local spool file (``gateway.audit.spool``, in
  the data directory) if it can be written; if it can't either, memory keeps
  them all, unbounded, because losing records is worse than using memory;
- the writer retries every ``retry_interval`` and says it is unwell: ``failing_since``
  and ``last_error`` feed ``/readyz`` (``degraded``) and the metrics, and the request
  story refuses requests while failing when the site set ``audit.on_failure: deny``;
- once the audit log takes writes again, the spool is written first, then memory,
  so the log keeps the order of decisions; the state clears;
- a spool left by an earlier process is written before anything new; at shutdown,
  whatever can't reach the log goes to the spool.

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
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple

from gateway.audit.spool import Spool

log = logging.getLogger("certgate.audit")
_utc_now: Callable[[], datetime] = partial(datetime.now, UTC)
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


def _encode(records: list[AuditRecord]) -> bytes:
    return "".join([r.to_json() + "\n" for r in records]).encode("utf-8")


class AuditWriter:
    def __init__(self, path: Path, *, spool_path: Path | None = None,
                 memory_limit: int = 100_000, flush_interval: float = 0.2,
                 batch_size: int = 1024, retry_interval: float = 1.0,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = path
        self._queue: deque[AuditRecord] = deque()
        self._spool = Spool(spool_path) if spool_path is not None else None
        self._memory_limit = memory_limit
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_interval = retry_interval
        self._clock = clock
        self._wake = asyncio.Event()
        self.written = 0
        self.failing_since: datetime | None = None
        self.last_error: str | None = None
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        """True while the audit log can't be written (records are being kept elsewhere)."""
        return self.failing_since is not None

    @property
    def spooled(self) -> int:
        """Records waiting because the audit log failed: in the spool file, and in
        memory while failing (a healthy queue is only a batch in transit)."""
        on_disk = self._spool.records if self._spool is not None else 0
        return on_disk + (len(self._queue) if self.failing else 0)

    def emit(self, record: AuditRecord) -> None:
        """Queue a record; never blocks. Unbounded here on purpose: a failed flush
        moves the overflow to the spool, and nothing is ever dropped."""
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
            except OSError:  # gone, or its directory replaced by a file
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

    def _drain_spool(self) -> int:
        with self._lock:
            return self._spool.drain(self._write_locked) if self._spool is not None else 0

    async def flush(self) -> None:
        """Write the spool, then the queue, in order. On failure the records stay (the
        overflow beyond ``memory_limit`` moves to the spool) and ``OSError`` is raised."""
        try:
            self.written += await asyncio.to_thread(self._drain_spool)
            while self._queue:
                records = [self._queue.popleft()
                           for _ in range(min(len(self._queue), self._batch_size * 4))]
                try:
                    await asyncio.to_thread(self._write, _encode(records))
                except OSError:
                    # Put the batch back in front and retry later: nothing is lost.
                    self._queue.extendleft(reversed(records))
                    raise
                self.written += len(records)
        except OSError as exc:
            self._unwell(exc)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._close_file)  # reopen on the retry
            await self._spill(len(self._queue) - self._memory_limit)
            raise
        if self.failing:
            log.warning("the audit log %s takes writes again; every kept record is written "
                        "(failing since %s)", self.path, self.failing_since)
            self.failing_since = self.last_error = None

    def _unwell(self, exc: OSError) -> None:
        error = f"cannot write the audit log {self.path}: {exc.strerror or exc}"
        if error != self.last_error:  # once per kind of failure, not once per retry
            log.error("%s; keeping every record (memory, then spool %s) and retrying",
                      error, self._spool.path if self._spool else "none")
        if self.failing_since is None:
            self.failing_since = self._clock()
        self.last_error = error

    async def _spill(self, count: int) -> None:
        """Move the ``count`` oldest queued records to the spool; keep them in memory
        if the spool can't be written either."""
        if count <= 0 or self._spool is None:
            return
        records = [self._queue.popleft() for _ in range(count)]
        spool = self._spool
        try:
            await asyncio.to_thread(spool.append, _encode(records), len(records))
        except OSError as exc:
            self._queue.extendleft(reversed(records))
            log.error("cannot write the audit spool %s either (%s): %d record(s) held in "
                      "memory", spool.path, exc.strerror or exc, len(self._queue))

    async def run(self) -> None:
        """Flush every ``flush_interval``; after a failure retry every ``retry_interval``.
        Survives any exception: an unexpected one is logged and retried like a disk error."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except OSError:
                await asyncio.sleep(self._retry_interval)
            except Exception:
                log.exception("the audit writer failed unexpectedly; retrying")
                await asyncio.sleep(self._retry_interval)

    async def close(self) -> None:
        """Write everything; what the audit log won't take goes to the spool."""
        try:
            await self.flush()
        except OSError:
            await self._spill(len(self._queue))
            if self._queue:
                log.critical("%d audit record(s) could be written neither to %s nor to the "
                             "spool; they are lost with this process", len(self._queue),
                             self.path)
        await asyncio.to_thread(self._close_file)

    def _close_file(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        return len(self._queue)
