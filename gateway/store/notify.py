"""The PostgreSQL change channel: one dedicated connection that ``LISTEN``s.

Every mutation's transaction ``NOTIFY``s ``CHANNEL`` (``base._event``); this
listener wakes the node's change follower when a notification arrives, so a
revocation on another node is applied within milliseconds instead of at the
next poll. The events table stays the truth: a notification carries nothing,
and a (re)connected listener wakes the follower at once, so whatever was missed
while the connection was down is read before anything else.

Each round of ``round_`` either connects and listens, or checks that the
connection still answers; ``gateway.ops.supervise.keep_running`` runs the
rounds, so a dropped connection, a refused one or any other error is logged
once and retried with backoff. ``listening`` tells the follower whether it may
poll slowly. SQLite has no such channel: there the follower polls.

Owns the asyncpg connection. Must not read or change data.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from gateway.ops.supervise import TaskHealth, keep_running
from gateway.store.base import CHANNEL

log = logging.getLogger("certgate.events")
_CHECK_EVERY = 5.0


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as asyncpg takes it (``postgresql://…``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """``LISTEN`` on ``CHANNEL``; call ``on_notify`` for each notification and on
    every (re)connect."""

    def __init__(self, url: str, on_notify: Callable[[], None]) -> None:
        self._dsn = _asyncpg_dsn(url)
        self._on_notify = on_notify
        self._conn: Any = None  # asyncpg.Connection while listening
        self.health = TaskHealth(
            "change listener", stuck_after=_CHECK_EVERY * 6,
            while_failing="changes from other nodes arrive by polling, within a second")

    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def _notified(self, *_: object) -> None:
        self._on_notify()

    async def round_(self) -> float:
        if not self.listening():
            await self._close()
            conn = await asyncpg.connect(self._dsn, timeout=10)
            try:
                await conn.add_listener(CHANNEL, self._notified)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
            log.info("listening for changes on the database channel %s", CHANNEL)
            self._on_notify()  # catch up on what happened while not listening
        else:
            try:
                await self._conn.fetchval("SELECT 1", timeout=10)
            except BaseException:
                await self._close()
                raise
        return _CHECK_EVERY

    async def run(self) -> None:
        try:
            await keep_running(self.health, self.round_, interval=_CHECK_EVERY,
                               max_backoff=_CHECK_EVERY, round_timeout=30.0, log=log)
        finally:
            await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
