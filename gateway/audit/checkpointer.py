"""When and where the writer puts signed checkpoints: every N records or M seconds,
and at shutdown; into the ``audit_checkpoints`` table, a file outside the database and,
when ``audit.syslog`` is set, the syslog forward (a SIEM the admin may not control).

The file (one JSON line per checkpoint, appended and fsync'ed) is what lets ``audit
verify`` notice a table whose tail was deleted, checkpoints included. A checkpoint
only ever covers records every destination already holds. Must not chain or write
records: the writer calls ``maybe`` after each batch that reached everywhere.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpoint import Checkpoint, checkpoint_line, sign_checkpoint
from gateway.audit.sinks import AuditSinkError
from gateway.audit.syslog import SyslogForwarder


class CheckpointDatabase(Protocol):
    async def append_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class Checkpointer:
    def __init__(self, key: Ed25519PrivateKey, *, path: Path | None,
                 database: CheckpointDatabase | None, every: int = 1000,
                 interval: float = 60.0, syslog: SyslogForwarder | None = None) -> None:
        self._key = key
        self.path = path
        self._database = database
        self._every = every
        self._interval = interval
        self.syslog = syslog
        self.last_seq = 0
        self._last_time = time.monotonic()
        self.written = 0

    def started_at(self, seq: int) -> None:
        """The chain head at start: the next checkpoint comes N records or M seconds on."""
        self.last_seq = seq
        self._last_time = time.monotonic()

    def due(self, seq: int) -> bool:
        if seq <= self.last_seq:
            return False
        return seq - self.last_seq >= self._every \
            or time.monotonic() - self._last_time >= self._interval

    async def write(self, node: str, seq: int, head: str, at: datetime) -> Checkpoint:
        """Sign and store a checkpoint of (seq, head); ``AuditSinkError`` when a place
        refuses it (it is retried with the next batch)."""
        checkpoint = sign_checkpoint(self._key, node, seq, head, at)
        if self.path is not None:
            try:
                await asyncio.to_thread(_append, self.path, checkpoint_line(checkpoint))
            except OSError as exc:
                raise AuditSinkError(f"cannot write the checkpoint file {self.path}: "
                                     f"{exc.strerror or exc}") from None
        if self._database is not None:
            try:
                await self._database.append_checkpoint(checkpoint)
            except Exception as exc:
                raise AuditSinkError(f"cannot write a checkpoint to the database: {exc}"
                                     ) from None
        if self.syslog is not None:  # a third copy, on a machine the admin may not control
            self.syslog.offer_checkpoint(checkpoint)
        self.last_seq = seq
        self._last_time = time.monotonic()
        self.written += 1
        return checkpoint


def _append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

