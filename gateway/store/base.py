"""What every part of the ``Store`` shares: the engine, one transaction, the event append.

``StoreBase._tx`` turns an unreachable database into ``DatabaseUnavailableError``
with one sentence and lets ``NotFoundError``/``ConflictError`` through untouched;
``_event`` appends the ``events`` row a mutation writes in its own transaction
and, on PostgreSQL, ``NOTIFY``s ``CHANNEL`` with it (delivered at commit, so a
listener never hears of a change it cannot read yet).
``_end_sessions`` ends login sessions, with the sessions handed off from them,
inside another mutation's transaction (a revocation, a disabled user, a TOTP
reset). Must not know about users, certificates or CRLs otherwise: those are
``users``, ``certs``, ``feed``, ``factors`` and ``handoffs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, delete, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import tables as t
from gateway.store.db import _is_connection_error, safe_url, short_cause
from gateway.store.errors import ConflictError, DatabaseUnavailableError, NotFoundError

# The PostgreSQL channel every node LISTENs on (gateway.store.notify).
CHANNEL = "certgate_events"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")


def utc_now() -> datetime:
    return datetime.now(UTC)


def inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None, "an INSERT always reports its primary key"
    return int(key[0])


class StoreBase:
    """The engine and its URL; the noun mixins build on ``_tx`` and ``_event``."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self._engine = engine
        self._url = url

    @property
    def url(self) -> str:
        return safe_url(self._url)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as conn:
                yield conn
        except (NotFoundError, ConflictError):
            raise
        except IntegrityError:
            raise
        except (DBAPIError, OSError, ConnectionError) as exc:
            if isinstance(exc, OSError | ConnectionError) or _is_connection_error(exc):
                raise DatabaseUnavailableError(
                    f"cannot reach the database at {self.url}: {short_cause(exc)}"
                ) from None
            raise

    @staticmethod
    async def _event(conn: AsyncConnection, kind: str, key: str) -> None:
        await conn.execute(insert(t.events).values(kind=kind, key=key, created_at=utc_now()))
        if conn.dialect.name == "postgresql":
            # One notification per transaction reaches listeners (PostgreSQL folds
            # identical ones); the listener's node then reads the events table.
            await conn.execute(_NOTIFY)

    async def _end_sessions(self, conn: AsyncConnection, where: Any) -> list[str]:
        """Delete the login sessions matching ``where``, and those handed off from them
        (to other app hosts, at any remove), each with its ``session`` event, inside the
        caller's transaction (a revocation and its sessions end together)."""
        c = t.sessions.c
        ids = [r.id_hash for r in await conn.execute(select(c.id_hash).where(where))]
        found = list(ids)
        while found:  # hand-offs of hand-offs: each round one step further from the root
            found = [r.id_hash for r in await conn.execute(select(c.id_hash).where(
                c.origin.in_(found), c.id_hash.not_in(ids)))]
            ids.extend(found)
        if ids:
            await conn.execute(delete(t.sessions).where(t.sessions.c.id_hash.in_(ids)))
            for id_hash in ids:
                await self._event(conn, "session", id_hash)
        return ids
