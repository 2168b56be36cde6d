"""Following the database's change feed so memory stays current without per-request I/O.

Every quarter second the follower asks for events after the last one it applied,
re-reads each changed user, certificate or login session and applies it to the
index (and the session index); revocation
thus reaches every node within a second. If the database is unreachable, or a
round fails in any other way (a driver error the store does not classify, a
bug), the gateway keeps serving from memory (a revoked certificate stays revoked,
it never comes back), logs once, and retries with backoff until it recovers
(``gateway.ops.supervise``); ``health`` tells ``/readyz`` and the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.auth.sessions import SessionIndex
from gateway.identity.index import CertificateIndex
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.store.errors import NotFoundError
from gateway.store.store import Store

log = logging.getLogger("certgate.events")

OnChange = Callable[[set[str], set[str]], Awaitable[None]]


class EventFollower:
    def __init__(self, store: Store, index: CertificateIndex, *, after_id: int,
                 interval: float = 0.25, on_change: OnChange | None = None,
                 sessions: SessionIndex | None = None) -> None:
        self._store = store
        self.index = index
        self.sessions = sessions
        self.last_event_id = after_id
        self._interval = interval
        self._on_change = on_change
        # Stuck: no successful round in 30 s, though one is due every quarter second.
        self.health = TaskHealth(
            "change follower", stuck_after=max(30.0, interval * 40),
            while_failing="serving from memory; changes made elsewhere wait until it recovers")

    @property
    def healthy(self) -> bool:
        """False while rounds fail (the database is unreachable, or worse)."""
        return not self.health.failing

    async def poll_once(self) -> int:
        events = await self._store.events_after(self.last_event_id)
        changed: set[str] = set()
        kinds: set[str] = set()
        for event in events:
            kinds.add(event.kind)
            if event.kind == "user":
                try:
                    user = await self._store.get_user(event.key)
                except NotFoundError:
                    user = None
                changed |= self.index.apply_user(event.key, user)
            elif event.kind == "cert":
                serial = int(event.key, 16)
                try:
                    cert = await self._store.get_certificate(serial)
                except NotFoundError:
                    cert = None
                changed |= self.index.apply_certificate(serial, cert)
            elif event.kind == "session" and self.sessions is not None:
                self.sessions.apply(event.key, await self._store.get_session(event.key))
            self.last_event_id = event.id
        if events and self._on_change is not None:
            await self._on_change(changed, kinds)
        return len(events)

    async def run(self) -> None:
        async def round_() -> None:
            await self.poll_once()

        await keep_running(self.health, round_, interval=self._interval, max_backoff=2.0,
                           round_timeout=30.0, log=log)
