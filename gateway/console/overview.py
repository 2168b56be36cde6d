"""The console's overview: how things stand this Monday morning, on one page.

Nodes (this node's readiness from memory; the others from their last
``gateway.start`` / ``gateway.stop`` in the audit trail), certificates that expire
within 30 days, sign-in lockouts now, denials in the last 24 hours, and the audit
chains at a glance: each node's head and whether its newest signed checkpoint still
matches the record it signed (a quick check, not ``certgate audit verify``).

Reads only; must not change anything.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.audit.chain import parse_at
from gateway.audit.checkpoint import signature_ok
from gateway.audit.keys import load_audit_public_key
from gateway.audit.query import AuditQuery
from gateway.ops.readiness import degradations
from gateway.store.db import serial_hex
from gateway.store.records import CertStatus
from pki.keys import PkiError
from policies.model import Reason, describe

if TYPE_CHECKING:
    from gateway.console.handler import Visit
    from gateway.store.store import Store

EXPIRING = timedelta(days=30)
DENIALS = timedelta(hours=24)
DENIALS_SHOWN = 10
DENIALS_COUNTED = 1000  # beyond this the page says "1000 or more"
NODES_SEEN = timedelta(days=30)
SIGN_IN_PROMPTS = frozenset({"mfa-required", "mfa-too-old", "handoff-sent"})


@dataclass(frozen=True)
class NodeLine:
    name: str
    state: str  # "ready", "degraded", "running", "stopped"
    since: str
    note: str = ""


@dataclass(frozen=True)
class ChainLine:
    node: str
    head: int
    checkpoint: str  # what the newest checkpoint says, in words
    ok: bool


def why(code: str | None) -> str:
    """A record's reason in words (``Reason``'s description), or the code as stored."""
    try:
        return describe(Reason(code or ""))
    except ValueError:
        return code or ""


def when(at: datetime | str | None) -> str:
    if at is None:
        return "—"
    moment = parse_at(at) if isinstance(at, str) else at
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def nodes(visit: Visit) -> list[NodeLine]:
    runtime = visit.runtime
    here = runtime.state.config.node
    problems = degradations(runtime, visit.now)
    lines = [NodeLine(here, "degraded" if problems else "ready", "this node",
                      "; ".join(str(p["reason"]) for p in problems))]
    seen: dict[str, dict[str, object]] = {}
    for type_ in ("gateway.start", "gateway.stop"):
        rows = await runtime.store.search_audit(AuditQuery(
            type=type_, since=visit.now - NODES_SEEN, limit=200))
        for row in rows:
            node = str(row["node"])
            if node.endswith(".cli") or node == here:
                continue
            if node not in seen or str(row["at"]) > str(seen[node]["at"]):
                seen[node] = row
    for node, row in sorted(seen.items()):
        running = row["type"] == "gateway.start"
        lines.append(NodeLine(node, "running" if running else "stopped",
                              f"{'started' if running else 'stopped'} {when(str(row['at']))}",
                              "from the audit trail"))
    return lines


async def chains(store: Store, visit: Visit) -> list[ChainLine]:
    config = visit.runtime.state.config
    try:
        key = await asyncio.to_thread(load_audit_public_key, config.audit.public_key)
    except (OSError, PkiError, ValueError):
        key = None
    out = []
    for node in await store.audit_nodes():
        head = await store.audit_head(node)
        if head is None:
            continue
        points = await store.audit_checkpoints(node)
        if not points:
            out.append(ChainLine(node, head[0], "no signed checkpoint yet", True))
            continue
        last = points[-1]
        signed = key is not None and signature_ok(key, last)
        rows = [row async for page in store.audit_rows(node, from_seq=last["seq"],
                                                     to_seq=last["seq"]) for row in page]
        matches = bool(rows) and rows[0]["hash"] == last["hash"] and head[0] >= last["seq"]
        if key is None:
            words = f"checkpoint at #{last['seq']} ({when(last['at'])}); no public key to check"
        elif signed and matches:
            words = f"checkpoint at #{last['seq']} ({when(last['at'])}) signed and matching"
        else:
            words = (f"checkpoint at #{last['seq']} does NOT match the records: run "
                     "`certgate audit verify`")
        out.append(ChainLine(node, head[0], words, matches and (signed or key is None)))
    return out


async def show(visit: Visit) -> web.Response:
    store = visit.runtime.store
    now = visit.now
    expiring = [c for c in await store.list_certificates(
        status=CertStatus.ACTIVE, expired=False, expiring_before=now + EXPIRING, now=now)]
    expiring.sort(key=lambda c: c.not_after)
    locked = await store.locked_subjects(now)
    found = await store.search_audit(AuditQuery(decision="deny", since=now - DENIALS,
                                                limit=DENIALS_COUNTED))
    # Being sent to sign in is recorded as a deny, but is nothing to look into.
    denials = [r for r in found if r["reason"] not in SIGN_IN_PROMPTS]
    return visit.page(
        "console_overview.html", title="Overview", here="/", nodes=await nodes(visit),
        expiring=expiring, locked=locked, denials=denials[:DENIALS_SHOWN],
        denial_count=(f"{len(denials)} or more" if len(found) >= DENIALS_COUNTED
                      else str(len(denials))), chains=await chains(store, visit), when=when,
        why=why, serial_hex=serial_hex)
