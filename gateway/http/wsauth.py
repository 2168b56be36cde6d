"""Open WebSockets keep only the access they still have.

A WebSocket outlives the request that opened it: a PBX panel may stay open for a
working day. Each open WebSocket is registered with the ``Facts`` of its upgrade
request; ``recheck`` runs the very decision that admitted it (``admit``: the
certificate now, the login session and its lifetimes, the policy now) again, and
closes every WebSocket that would no longer be admitted with 1008 "access
revoked". The runtime calls it when a change arrives (certificate, user, session),
after a config reload, and periodically (``auth.websocket_reauth``).

Deciding is pure and in memory; the only I/O is closing the sockets that lost
access. Must not open sockets or read the database.
"""

from __future__ import annotations

from datetime import datetime

from gateway.auth.sessions import SessionIndex
from gateway.http.admit import Admission, Facts, Tables, admit
from gateway.http.forward import WebSocketRegistry
from gateway.identity.index import CertificateIndex

CLOSE_CODE = 1008  # policy violation
CLOSE_REASON = b"access revoked"


def still_admitted(facts: Facts, state: Tables, index: CertificateIndex,
                   sessions: SessionIndex, now: datetime) -> bool:
    """Would the upgrade request that opened this WebSocket be admitted now?"""
    return isinstance(admit(facts, state, index, sessions, now), Admission)


async def recheck(registry: WebSocketRegistry, state: Tables, index: CertificateIndex,
                  sessions: SessionIndex, now: datetime) -> int:
    """Close every open WebSocket that lost access; how many were closed."""
    closed = 0
    for ws, facts in registry.open():
        if not still_admitted(facts, state, index, sessions, now):
            await ws.close(code=CLOSE_CODE, message=CLOSE_REASON)
            closed += 1
    return closed
