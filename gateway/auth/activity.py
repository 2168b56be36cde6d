"""Sharing the use of login sessions between nodes, so the idle timeout means the same on all.

A request touches its session in this node's memory only (no database round trip
on the request path). Without more, a session used all day on node B would look
idle on node A an hour after sign-in, and a node that restarts would load every
session with the ``last_seen`` of its start. So every ``interval`` (30 s, or a
tenth of the idle timeout when that is shorter) this loop writes the sessions
used here since the last round to the database in one batch (``last_seen`` only
moves forward) and reads the ones any node used since its previous read into
memory. A session's idle time is thus exact on the node that serves it and at
most about two intervals behind on the others.

Writes no event (that would flood the change feed with one event per active
session per round). Survives any failure through ``gateway.ops.supervise``: the
touches of a failed round are kept for the next. Must not decide who is signed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.auth.sessions import SessionIndex
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.store.store import Store

log = logging.getLogger("certgate.sessions")


def share_interval(idle: timedelta) -> float:
    return max(1.0, min(30.0, idle.total_seconds() / 10))


class SessionActivity:
    def __init__(self, store: Store, sessions: SessionIndex, *, now: datetime,
                 interval: float) -> None:
        self._store = store
        self._sessions = sessions
        self._interval = interval
        self._read_since = now - timedelta(seconds=interval)
        self.health = TaskHealth(
            "session activity", stuck_after=max(120.0, interval * 10),
            while_failing="sessions used on other nodes may time out here as idle")

    async def round_(self, now: datetime) -> float:
        touched = self._sessions.take_touched()
        try:
            await self._store.touch_sessions(touched)
        except BaseException:
            self._sessions.give_back(touched)
            raise
        # Overlap two intervals: a use that another node wrote up to one interval later
        # than it happened, and some clock difference between the nodes.
        since, self._read_since = self._read_since, now - timedelta(seconds=2 * self._interval)
        self._sessions.seen_elsewhere(await self._store.sessions_seen_since(since))
        return self._interval

    async def run(self, clock: Callable[[], datetime]) -> None:
        async def round_() -> float:
            return await self.round_(clock())

        await keep_running(self.health, round_, interval=self._interval,
                           max_backoff=self._interval, round_timeout=60.0, log=log)
