"""Retention (``audit.retention``): delete a node's oldest records, only behind a signed
checkpoint, and record the deletion in the chain.

One ``prune`` (a round of a supervised background task in the gateway, hourly):

1. the cut-off is ``now - retention``; the candidates are this node's checkpoints
   whose signature verifies with ``audit.pub`` *and* which are in both places, the
   ``audit_checkpoints`` table and the checkpoint file;
2. the anchor is the newest such checkpoint at or before the node's last record older
   than the cut-off, whose record is still stored with the hash the checkpoint signed
   (a log that already disagrees with its checkpoints is left as evidence);
3. the records up to and including the anchor's seq are deleted, oldest first, in
   transactions of ``CHUNK`` records;
4. an ``audit.retention`` record is emitted into the node's own chain: how many,
   through which seq, and the anchoring checkpoint (seq, hash, time, signature).

``audit verify`` then accepts a chain whose first record follows a signed checkpoint
(its ``prev_hash`` is the checkpoint's hash at seq - 1), and still reports a prefix
removed without one as ``removed``. Only this node's records are ever deleted, and
only up to this node's own checkpoint. Must not chain or write records itself (the
writer does) and never deletes past a checkpoint it has not checked.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.checkpoint import Checkpoint, checkpoint_from_json, signature_ok
from gateway.audit.record import AuditRecord

log = logging.getLogger("certgate.audit")
CHUNK = 50_000  # records deleted per transaction
INTERVAL = 3600.0  # seconds between rounds in the gateway


class RetentionDatabase(Protocol):
    async def audit_bounds(self, node: str) -> tuple[int, int] | None: ...

    async def audit_last_seq_before(self, node: str, before: datetime) -> int | None: ...

    async def audit_checkpoints(self, node: str) -> list[dict[str, Any]]: ...

    async def audit_row(self, node: str, seq: int) -> dict[str, Any] | None: ...

    async def delete_audit_through(self, node: str, seq: int) -> int: ...


def _key(cp: Checkpoint) -> tuple[int, str, str, str]:
    return int(cp["seq"]), str(cp["hash"]), str(cp["at"]), str(cp["signature"])


def read_file_checkpoints(path: Path, node: str) -> set[tuple[int, str, str, str]]:
    """The node's checkpoints in the checkpoint file (none when it does not exist)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return set()
    return {_key(cp) for line in lines if line.strip()
            and (cp := checkpoint_from_json(line)) is not None and cp["node"] == node}


class Retention:
    def __init__(self, database: RetentionDatabase, *, node: str, keep: timedelta,
                 public_key: Ed25519PublicKey, checkpoint_file: Path,
                 emit: Callable[[AuditRecord], None], clock: Callable[[], datetime]) -> None:
        self._database = database
        self.node = node
        self.keep = keep
        self._public_key = public_key
        self._file = checkpoint_file
        self._emit = emit
        self._clock = clock
        self.deleted = 0  # records deleted by this process

    async def anchor(self, now: datetime) -> Checkpoint | None:
        """The checkpoint the next deletion may end at (see the module docstring)."""
        db, node = self._database, self.node
        bounds = await db.audit_bounds(node)
        last_old = await db.audit_last_seq_before(node, now - self.keep)
        if bounds is None or last_old is None:
            return None
        in_file = await asyncio.to_thread(read_file_checkpoints, self._file, node)
        candidates = sorted((cp for cp in await db.audit_checkpoints(node)
                             if bounds[0] <= int(cp["seq"]) <= last_old
                             and _key(cp) in in_file),
                            key=lambda cp: int(cp["seq"]), reverse=True)
        for cp in candidates:
            if not signature_ok(self._public_key, cp):
                log.error("audit retention: the checkpoint of node %s at seq %s does not "
                          "verify; not deleting behind it", node, cp["seq"])
                continue
            row = await db.audit_row(node, int(cp["seq"]))
            if row is None or row["hash"] != cp["hash"]:
                log.error("audit retention: record %s of node %s differs from its signed "
                          "checkpoint; nothing deleted (run `certgate audit verify`)",
                          cp["seq"], node)
                return None
            return cp
        return None

    async def prune(self) -> int:
        """Delete what retention allows now, record it; how many records went."""
        now = self._clock()
        cp = await self.anchor(now)
        if cp is None:
            return 0
        through = int(cp["seq"])
        bounds = await self._database.audit_bounds(self.node)
        first = bounds[0] if bounds else through + 1
        deleted = 0
        for end in range(min(first + CHUNK - 1, through), through + CHUNK, CHUNK):
            deleted += await self._database.delete_audit_through(self.node, min(end, through))
            if end >= through:
                break
        self.deleted += deleted
        self._emit(AuditRecord.event(
            "audit.retention", now, reference=secrets.token_hex(6), reason="retention",
            detail={"node": self.node, "deleted": deleted, "from_seq": first,
                    "through_seq": through, "older_than": (now - self.keep).isoformat(),
                    "checkpoint": {k: cp[k] for k in ("seq", "hash", "at", "signature")}}))
        log.info("audit retention: deleted %d record(s) of node %s (seq %d to %d), anchored "
                 "on the signed checkpoint at seq %d of %s", deleted, self.node, first,
                 through, through, cp["at"])
        return deleted

    async def round(self) -> float:
        """One round for ``gateway.ops.supervise.keep_running``."""
        await self.prune()
        return INTERVAL
