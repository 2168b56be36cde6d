"""The local spool: chained audit records that could not reach the audit log yet.

A plain append-only file of JSON lines (0600) in the data directory, one chained
record (with its seq and hash) per line. The writer appends the *oldest* records
it holds in memory here when its in-memory bound is exceeded, so every line in the
spool is older than every record still in memory; draining hands the spool back in
blocks that end at a line break (``read_block``/``consumed``), remembers how far it
got (a failure half-way never hands a block on twice), and removes the file once
everything is taken. A spool left by a process that died while the audit log was
failing is drained by the next start, and its last line tells that start where the
chain stands (``last_line``). The writer skips records a destination already holds,
so a crash in the middle of a drain duplicates nothing in the database.

Runs in the writer's worker thread, under the writer's lock. Must not encode
records or decide when to spool: the writer does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

BLOCK = 1 << 20


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0  # bytes of the file already copied to the audit log
        self.records = self._count()

    def _count(self) -> int:
        try:
            data = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return 0
        return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)

    def append(self, data: bytes, records: int) -> None:
        """Append whole lines and fsync; raises ``OSError`` when the spool can't be written."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records += records

    def last_line(self) -> bytes | None:
        """The last whole line of the spool (the newest record), or None."""
        try:
            with open(self.path, "rb") as spool:
                end = spool.seek(0, os.SEEK_END)
                spool.seek(max(0, end - BLOCK))
                tail = spool.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        lines = [line for line in tail.split(b"\n")[:-1] if line]  # whole lines only
        return lines[-1] if lines else None

    def read_block(self) -> bytes:
        """The next block of whole lines after what was ``consumed``; a torn last line
        (a crash while spooling) comes last, completed with a line break. Empty at the end."""
        if self.records == 0:
            return b""
        with open(self.path, "rb") as spool:
            spool.seek(self._offset)
            block = spool.read(BLOCK)
            if not block:
                return b""
            cut = block.rfind(b"\n") + 1
            if cut:
                return block[:cut]
            rest = block + spool.read()  # one line longer than a block, or a torn tail
            cut = rest.find(b"\n") + 1
            return rest[:cut] if cut else rest + b"\n"

    def consumed(self, size: int, lines: int) -> None:
        """``size`` bytes (``lines`` records) of the last block are written; when that
        was everything, the file is removed."""
        self._offset += size
        self.records = max(0, self.records - lines)
        if self._offset >= self.path.stat().st_size:
            self.path.unlink()
            self._offset = 0
            self.records = 0

    def drain(self, write: Callable[[bytes], None]) -> int:
        """Hand the spooled lines to ``write`` in order, block by block; remove the file
        when all are written. Returns the number of records written. ``write``'s
        ``OSError`` propagates, and the next drain resumes after the last whole block."""
        if self.records == 0:
            return 0
        written = 0
        with open(self.path, "rb") as spool:
            spool.seek(self._offset)
            rest = b""
            while block := spool.read(BLOCK):
                block = rest + block
                cut = block.rfind(b"\n") + 1
                block, rest = block[:cut], block[cut:]
                if block:
                    write(block)
                    self._offset += len(block)
                    lines = block.count(b"\n")
                    written += lines
                    self.records -= lines
            if rest:  # a torn last line (a crash while spooling): keep it, whole
                write(rest + b"\n")
                written += 1
        self.path.unlink()
        self._offset = 0
        self.records = 0
        return written
