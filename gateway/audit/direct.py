"""Writing audit records straight to the database, for a process without a writer.

The CLI is a separate process from ``serve`` and records its own admin changes. It
has no queue and no spool: a change it can't record is reported at once (the admin
is there to see it). ``DirectChain`` keeps a chain node of its own (``<node>.cli``,
see ``cli_node``) and each ``append``:

1. reads the node's stored head,
2. links the records after it (``gateway.audit.chain``),
3. inserts them in one transaction.

Two CLI processes may race for the same seq: the table's (node, seq) primary key
refuses the loser's insert, which then re-reads the head and, when it moved, tries
again, so the chain stays one unbroken line whoever wins (a refusal while the head
stayed put is not a race: it is raised). ``checkpoint`` signs the head like the
gateway does at shutdown. Must not queue, spool, or decide what a record says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from gateway.audit.chain import Chain, ChainRow
from gateway.audit.checkpoint import Checkpoint
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.record import AuditRecord

ATTEMPTS = 20  # racing writers each win within a few rounds; 20 is far beyond that
SUFFIX = ".cli"


def cli_node(node: str) -> str:
    """The chain node of admin changes made beside gateway ``node`` (one per config)."""
    return node + SUFFIX


class DirectDatabase(Protocol):
    """What the store offers (``gateway.store.audit.AuditStore``)."""

    async def audit_head(self, node: str) -> tuple[int, str] | None: ...

    async def append_audit(self, rows: list[ChainRow]) -> None: ...

    async def append_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class ChainRaceError(Exception):
    """Other writers took the next seq ``ATTEMPTS`` times in a row."""


class DirectChain:
    def __init__(self, database: DirectDatabase, node: str) -> None:
        self._database = database
        self.node = node
        self.head: tuple[int, str] | None = None  # after the last append of this object

    async def append(self, records: Sequence[AuditRecord]) -> list[ChainRow]:
        """Chain ``records`` after the stored head and insert them (all or none)."""
        if not records:
            return []
        for _ in range(ATTEMPTS):
            stored = await self._database.audit_head(self.node)
            chain = Chain(self.node, *stored) if stored else Chain(self.node)
            rows = [chain.link(record.fields()) for record in records]
            try:
                await self._database.append_audit(rows)
            except IntegrityError:
                if await self._database.audit_head(self.node) == stored:
                    raise  # the head did not move: a refusal, not a race
                continue  # another process took that seq: go again after its record
            self.head = (chain.seq, chain.head)
            return rows
        raise ChainRaceError(f"the audit chain {self.node} kept moving: {ATTEMPTS} other "
                             "writers took the next record's number")

    async def checkpoint(self, checkpointer: Checkpointer, at: datetime) -> Checkpoint | None:
        """A signed checkpoint of the stored head (what this process or a racing one
        wrote last); None when the chain is empty."""
        stored = await self._database.audit_head(self.node)
        if stored is None:
            return None
        return await checkpointer.write(self.node, stored[0], stored[1], at)
