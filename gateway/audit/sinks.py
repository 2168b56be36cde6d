"""Where chained audit records go: the database table, and optionally a JSON-lines file.

Each destination ("sink") remembers the last sequence number it holds (``done``,
None until asked with ``head``), so the writer hands it only newer records: a
destination that failed is retried without the others writing anything twice.
A write that fails raises ``AuditSinkError`` (an ``OSError``, one sentence) and
forgets ``done``, so the next attempt first asks the destination where it stands
(a commit whose answer was lost is not inserted twice).

``FileSink`` writes from a worker thread (only ``os`` calls, which release the GIL),
keeps the file open between batches and reopens it when it was moved away (log
rotation). ``DatabaseSink`` writes one transaction per batch through the store's
``AuditDatabase`` methods. Must not chain, queue or spool: the writer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Protocol

from gateway.audit.chain import FIELDS, ChainRow

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
TAIL = 1 << 20  # how much of a file's end is read to find the node's last record


class AuditSinkError(OSError):
    """A destination refused a batch; ``str`` is one sentence for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def encode_lines(rows: list[ChainRow]) -> bytes:
    """Records as JSON lines, fields in table order (the spool and the file use it)."""
    return "".join([_ENCODE({name: row.get(name) for name in FIELDS}) + "\n"
                    for row in rows]).encode("utf-8")


def decode_line(line: bytes) -> ChainRow | None:
    """A record from one JSON line, or None when the line is not a chained record."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("seq"), int) \
            or not isinstance(row.get("hash"), str):
        return None
    return row


class AuditDatabase(Protocol):
    """What the store offers the writer (``gateway.store.audit.AuditStore``)."""

    async def audit_head(self, node: str) -> tuple[int, str] | None: ...

    async def append_audit(self, rows: list[ChainRow]) -> None: ...


class DatabaseSink:
    name = "database"

    def __init__(self, database: AuditDatabase, node: str) -> None:
        self._database = database
        self.node = node
        self.done: int | None = None

    def describe(self) -> str:
        return "the audit table"

    async def head(self) -> tuple[int, str] | None:
        try:
            return await self._database.audit_head(self.node)
        except Exception as exc:
            raise AuditSinkError(f"cannot read the audit table: {_cause(exc)}") from None

    async def write(self, rows: list[ChainRow]) -> None:
        try:
            await self._database.append_audit(rows)
        except Exception as exc:
            self.done = None  # ask again where the table stands before the retry
            raise AuditSinkError(
                f"cannot write the audit records to the database: {_cause(exc)}") from None


class FileSink:
    name = "file"

    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self.node = node
        self.done: int | None = None
        self._fd: int | None = None
        self._lock = threading.Lock()  # a shutdown flush may overlap a cancelled one

    def describe(self) -> str:
        return str(self.path)

    async def head(self) -> tuple[int, str] | None:
        return await asyncio.to_thread(self._head)

    def _head(self) -> tuple[int, str] | None:
        """This node's newest record in the file's last MiB (None: none, or no file)."""
        try:
            with open(self.path, "rb") as file:
                end = file.seek(0, os.SEEK_END)
                file.seek(max(0, end - TAIL))
                tail = file.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        for line in reversed(tail.split(b"\n")):
            row = decode_line(line) if line else None
            if row is not None and row.get("node") == self.node:
                return int(row["seq"]), str(row["hash"])
        return None

    async def write(self, rows: list[ChainRow]) -> None:
        try:
            await asyncio.to_thread(self._write, encode_lines(rows))
        except OSError as exc:
            self.done = None
            with self._lock:
                self._close_locked()  # reopen on the retry
            raise AuditSinkError(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}") from None

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    moved = os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
                except OSError:  # gone, or its directory replaced by a file
                    moved = True
                if moved:
                    self._close_locked()
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)

    def _close_locked(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                self._close_locked()
        await asyncio.to_thread(close)


Sink = DatabaseSink | FileSink


def _cause(exc: BaseException) -> str:
    """The first line of the innermost error, without SQL (``gateway.store`` names the
    database in its own ``DatabaseUnavailableError`` sentence)."""
    inner: BaseException = exc
    while getattr(inner, "orig", None) is not None:
        inner = inner.orig  # type: ignore[attr-defined]
    text = str(inner).strip()
    return text.splitlines()[0].split("[SQL:")[0].strip() if text else type(inner).__name__
