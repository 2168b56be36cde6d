"""Following the database's change feed so memory stays current without per-request I/O.

The follower asks for events after the last one it applied, re-reads each changed
user, certificate or login session and applies it to the index (and the session
index). It asks every quarter second, or, while a PostgreSQL ``LISTEN``
connection is up (``gateway.store.notify``), as soon as a change is notified and
every few seconds as catch-up; revocation thus reaches every node within a second.

Ids are handed out before commit: on PostgreSQL the event with id 9 may commit
after the one with id 10. An id skipped over is a *gap*, asked for again on every
round until its event arrives or ``GAP_GRACE`` seconds pass (a rolled-back
transaction leaves a hole that never fills); no committed event is skipped.

If the database is unreachable, or a
round fails in any other way (a driver error the store does not classify, a
bug), the gateway keeps serving from memory (a revoked certificate stays revoked,
it never comes back), logs once, and retries with backoff until it recovers
(``gateway.ops.supervise``); ``health`` tells ``/readyz`` and the metrics.

Each event that takes access away *on this node* (a certificate revoked or
suspended, a user disabled or removed, a login session ended) is reported to
``on_applied`` as an ``AppliedChange`` with the event's creation time and the
moment this node applied it: the runtime writes it to the audit trail
(``change.applied``), so a reviewer can tell from which second on a certificate
was useless on every node. Events that grant access (a new session, a resumed
certificate) are not reported: on a busy site they would flood the trail and they
answer no such question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.auth.sessions import SessionIndex
from gateway.identity.index import CertificateIndex
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.store.errors import NotFoundError
from gateway.store.records import CertStatus, Event
from gateway.store.store import Store

log = logging.getLogger("certgate.events")

OnChange = Callable[[set[str], set[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """An event that took access away, as this node applied it."""

    event_id: int
    kind: str  # "cert", "user" or "session"
    key: str  # serial (hex), user name, or the session id's first 16 hex digits
    change: str  # "revoked", "suspended", "removed", "disabled" or "ended"
    user: str | None
    created_at: datetime  # when the event was written (the writer's clock)
    applied_at: datetime  # when this node's memory changed (this node's clock)

    @property
    def lag_ms(self) -> float:
        return round((self.applied_at - self.created_at).total_seconds() * 1000, 1)


OnApplied = Callable[[AppliedChange], None]
# How long an id skipped over is waited for; no transaction of the store lasts this long.
GAP_GRACE = 30.0
_MAX_GAPS = 10_000


class EventFollower:
    def __init__(self, store: Store, index: CertificateIndex, *, after_id: int,
                 interval: float = 0.25, on_change: OnChange | None = None,
                 sessions: SessionIndex | None = None, gaps: Iterable[int] = (),
                 catch_up: float = 2.0, on_applied: OnApplied | None = None) -> None:
        self._store = store
        self.index = index
        self.sessions = sessions
        self.last_event_id = after_id
        self.revocations = 0  # certificates this follower saw revoked or suspended
        self._interval = interval
        self._catch_up = max(catch_up, interval)
        self._on_change = on_change
        self._on_applied = on_applied
        now = time.monotonic()
        self._gaps: dict[int, float] = dict.fromkeys(gaps, now)  # id -> first missed
        # Set by the change listener: poll now. ``listening`` says whether one is up.
        self.wake = asyncio.Event()
        self.listening: Callable[[], bool] = lambda: False
        # Stuck: no successful round in 30 s, though one is due every quarter second.
        self.health = TaskHealth(
            "change follower", stuck_after=max(30.0, interval * 40),
            while_failing="serving from memory; changes made elsewhere wait until it recovers")

    @property
    def healthy(self) -> bool:
        """False while rounds fail (the database is unreachable, or worse)."""
        return not self.health.failing

    def lag(self, now: float | None = None) -> float:
        """Seconds since a round last read the database (memory is at most this stale)."""
        now = time.monotonic() if now is None else now
        health = self.health
        return now - (health.last_success if health.last_success is not None
                      else health.started)

    @property
    def gaps(self) -> frozenset[int]:
        """Ids skipped over whose transactions may still commit."""
        return frozenset(self._gaps)

    def _track(self, event_id: int, now: float) -> None:
        """Note ``event_id`` as applied: fill its gap, or move past it noting new gaps."""
        if self._gaps.pop(event_id, None) is not None or event_id <= self.last_event_id:
            return
        if len(self._gaps) + event_id - self.last_event_id < _MAX_GAPS:
            for missing in range(self.last_event_id + 1, event_id):
                self._gaps[missing] = now
        self.last_event_id = event_id

    async def poll_once(self) -> int:
        now = time.monotonic()
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_GRACE}
        events = await self._store.events_after(self.last_event_id, gaps=self._gaps)
        changed: set[str] = set()
        kinds: set[str] = set()
        for event in events:
            kinds.add(event.kind)
            change: tuple[str, str | None] | None = None  # (what, whose) if access was lost
            if event.kind == "user":
                try:
                    user = await self._store.get_user(event.key)
                except NotFoundError:
                    user = None
                was_enabled = self.index.user_enabled(event.key)
                changed |= self.index.apply_user(event.key, user)
                if was_enabled and (user is None or not user.enabled):
                    change = ("removed" if user is None else "disabled", event.key)
            elif event.kind == "cert":
                serial = int(event.key, 16)
                try:
                    cert = await self._store.get_certificate(serial)
                except NotFoundError:
                    cert = None
                before = self.index.certificate_status(serial)
                changed |= self.index.apply_certificate(serial, cert)
                if before is CertStatus.ACTIVE and (cert is None
                                                    or cert.status is not CertStatus.ACTIVE):
                    change = ("removed" if cert is None else cert.status.value,
                              cert.user if cert else None)
                    if cert is not None:
                        self.revocations += 1
            elif event.kind == "session" and self.sessions is not None:
                session = await self._store.get_session(event.key)
                ended = self.sessions.apply(event.key, session)
                if session is None:
                    change = ("ended", ended.user if ended else None)
            self._track(event.id, now)
            if change is not None and self._on_applied is not None:
                self._on_applied(_applied(event, *change))
        if events and self._on_change is not None:
            await self._on_change(changed, kinds)
        return len(events)

    async def run(self) -> None:
        async def round_() -> float:
            await self.poll_once()
            return self._catch_up if self.listening() else self._interval

        await keep_running(self.health, round_, interval=self._interval, max_backoff=2.0,
                           round_timeout=30.0, log=log, sleep=self._sleep)

    async def _sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less if the listener wakes us."""
        try:
            async with asyncio.timeout(delay):
                await self.wake.wait()
        except TimeoutError:
            pass
        self.wake.clear()


def _applied(event: Event, change: str, user: str | None) -> AppliedChange:
    key = event.key[:16] if event.kind == "session" else event.key
    return AppliedChange(event.id, event.kind, key, change, user, event.created_at,
                         datetime.now(UTC))
