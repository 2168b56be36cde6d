"""Verifying the audit trail: every node's chain from the database, against the signed
checkpoints from the database and from the checkpoint file.

Reads the records a page at a time (memory stays bounded by the page and the
verifier's look-ahead), merges the checkpoints of both places (the file is the
copy an admin can't quietly rewrite with the table), and returns one
``NodeResult`` per node. ``parse_since`` turns ``24h``, ``30d`` or an ISO date/time
into a moment. Never prints; refuses with ``ManageError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.checkpoint import Checkpoint, checkpoint_from_json, signature_ok
from gateway.audit.verify import NodeResult, NodeVerifier
from gateway.manage.errors import ManageError
from gateway.store.store import Store
from policies.durations import parse_duration


def parse_since(text: str, now: datetime, option: str = "--since") -> datetime:
    """``24h``/``30d`` (that long before ``now``) or an ISO 8601 date or time (UTC when
    no zone is given); ``option`` names the flag in the refusal."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ManageError(f"{option} '{text}' is neither a duration (24h, 30d) nor an ISO "
                          "date or time (2026-11-01, 2026-11-01T08:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_checkpoint_file(path: Path) -> list[Checkpoint]:
    """The checkpoints in the file (an absent file holds none); lines that are not
    checkpoints are skipped: a forged line still has to carry a valid signature."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ManageError(f"cannot read the checkpoint file {path}: {exc.strerror}") from None
    return [cp for line in lines if line.strip() and (cp := checkpoint_from_json(line))]


async def node_checkpoints(store: Store, node: str, from_file: list[Checkpoint]
                           ) -> list[Checkpoint]:
    """The node's checkpoints from the table and from the file, each once."""
    unique = {(cp["seq"], cp["hash"], cp["at"], cp["signature"]): cp
              for cp in [*await store.audit_checkpoints(node),
                         *(cp for cp in from_file if cp["node"] == node)]}
    return list(unique.values())


@dataclass(frozen=True)
class Verification:
    nodes: list[NodeResult]
    since: datetime | None
    checkpoint_file: Path | None

    @property
    def ok(self) -> bool:
        return all(node.ok for node in self.nodes)


async def verify_audit(store: Store, *, public_key: Ed25519PublicKey | None,
                       checkpoint_file: Path | None, since: datetime | None = None
                       ) -> Verification:
    """Check every node's chain and checkpoints (see ``gateway.audit.verify``)."""
    from_file = read_checkpoint_file(checkpoint_file) if checkpoint_file else []
    nodes = sorted(set(await store.audit_nodes()) | {str(cp["node"]) for cp in from_file})
    check = None if public_key is None else (lambda cp: signature_ok(public_key, cp))
    results = []
    for node in nodes:
        checkpoints = await node_checkpoints(store, node, from_file)
        start = 1
        if since is not None:
            first = await store.audit_first_seq(node, since)
            start = first if first is not None else (await store.audit_head(node) or (0,))[0] + 1
        bounds = await store.audit_bounds(node)
        # Signed checkpoints a log shortened by retention may start behind.
        anchors = {} if check is None else \
            {int(cp["seq"]): str(cp["hash"]) for cp in checkpoints if check(cp)}
        verifier = NodeVerifier(node, from_start=start <= (bounds[0] if bounds else 1),
                                checkpoint_seqs=[int(cp["seq"]) for cp in checkpoints],
                                anchors=anchors)
        async for page in store.audit_rows(node, from_seq=start):
            verifier.feed(page)
        if since is not None:
            checkpoints = [cp for cp in checkpoints if int(cp["seq"]) >= start]
        results.append(verifier.finish(checkpoints, check))
    return Verification(results, since, checkpoint_file)
