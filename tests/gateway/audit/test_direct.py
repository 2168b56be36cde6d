"""The direct path the CLI records admin changes with: it continues the stored chain,
survives a second writer taking its seq (the primary key refuses, it re-reads and goes
again), and signs a checkpoint of what it wrote; the result verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpoint import Checkpoint, signature_ok
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.direct import DirectChain, cli_node
from gateway.manage.audit import verify_audit
from gateway.store.store import Store
from tests.gateway.audit.helpers import record, stored

NODE = cli_node("gw1")


async def test_the_node_of_the_cli_sits_beside_the_gateway() -> None:
    assert NODE == "gw1.cli"


async def test_appends_continue_the_stored_chain_and_verify(store: Store) -> None:
    first = DirectChain(store, NODE)
    await first.append([record(1), record(2)])
    assert first.head is not None and first.head[0] == 2
    second = DirectChain(store, NODE)  # another invocation later on
    [row] = await second.append([record(3)])
    assert (row["seq"], row["prev_hash"]) == (3, first.head[1])
    rows = await stored(store, NODE)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    result = await verify_audit(store, public_key=None, checkpoint_file=None)
    assert result.ok and result.nodes[0].node == NODE and result.nodes[0].records == 3


class Interleaved:
    """The store, but the first head it reports is stale: between reading it and
    answering, ``other`` (a second process, on its own connections) appends."""

    def __init__(self, store: Store, other: DirectChain) -> None:
        self.store = store
        self.other = other
        self.heads = 0
        self.refused = 0

    async def audit_head(self, node: str) -> tuple[int, str] | None:
        head = await self.store.audit_head(node)
        self.heads += 1
        if self.heads == 1:
            await self.other.append([record(99, user="bob")])
        return head

    async def append_audit(self, rows: list[dict[str, Any]]) -> None:
        try:
            await self.store.append_audit(rows)
        except Exception:
            self.refused += 1
            raise

    async def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.store.append_checkpoint(checkpoint)


async def test_a_writer_that_lost_the_race_rereads_the_head(store: Store,
                                                            database_url: str) -> None:
    await DirectChain(store, NODE).append([record(1)])
    other_process = await Store.open(database_url)
    try:
        racing = Interleaved(store, DirectChain(other_process, NODE))
        [row] = await DirectChain(racing, NODE).append([record(2)])
    finally:
        await other_process.close()
    assert racing.refused == 1  # the primary key refused seq 2 once
    assert racing.heads == 3 and row["seq"] == 3  # read, re-read after the refusal, read
    rows = await stored(store, NODE)
    assert [(r["seq"], r["user"]) for r in rows] == [(1, "alice"), (2, "bob"), (3, "alice")]
    assert (await verify_audit(store, public_key=None, checkpoint_file=None)).ok


async def test_two_writers_at_once_leave_one_unbroken_chain(store: Store,
                                                            database_url: str) -> None:
    other_process = await Store.open(database_url)
    try:
        a, b = DirectChain(store, NODE), DirectChain(other_process, NODE)
        await asyncio.gather(*[chain.append([record(n)]) for n in range(8)
                               for chain in (a, b)])
    finally:
        await other_process.close()
    rows = await stored(store, NODE)
    assert [r["seq"] for r in rows] == list(range(1, 17))
    assert (await verify_audit(store, public_key=None, checkpoint_file=None)).ok


async def test_a_checkpoint_signs_the_stored_head(store: Store, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    chain = DirectChain(store, NODE)
    checkpointer = Checkpointer(key, path=tmp_path / "checkpoints.jsonl", database=store)
    assert await chain.checkpoint(checkpointer, record(0).at) is None  # nothing to sign
    await chain.append([record(1), record(2)])
    checkpoint = await chain.checkpoint(checkpointer, record(3).at)
    assert checkpoint is not None and chain.head is not None
    assert (checkpoint["node"], checkpoint["seq"], checkpoint["hash"]) == (NODE, *chain.head)
    assert signature_ok(key.public_key(), checkpoint)
    result = await verify_audit(store, public_key=key.public_key(),
                                checkpoint_file=tmp_path / "checkpoints.jsonl")
    assert result.ok and result.nodes[0].checkpoints == 1
