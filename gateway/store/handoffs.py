"""Hand-off tokens in the database: one sign-in carried to another app host, once.

A token is stored only as its SHA-256, bound to one certificate, one target host
and the session it hands off, and valid until ``expires_at``. Redeeming it is a
conditional write (unused, unexpired, same certificate, same host), so it is
single-use across every node sharing the database; the new session is written in
the same transaction, with its ``session`` event.

Must not see a token or a cookie in the clear (only their hashes), and must not
decide lifetimes: the caller passes ``expires_at`` and ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t
from gateway.store.base import StoreBase
from gateway.store.factors import insert_session, session_from_row, session_query
from gateway.store.records import HandoffRefusal, SessionRecord

# Spent and expired tokens are swept this long after they expire (until then a late
# one is refused as "expired", which tells a reviewer more than "unknown").
_KEEP = timedelta(hours=1)


class HandoffStore(StoreBase):
    """The ``Store`` methods about hand-off tokens."""

    async def create_handoff(self, token_hash: str, *, fingerprint: str, target_host: str,
                             origin: str, expires_at: datetime, now: datetime) -> None:
        async with self._tx() as conn:
            await conn.execute(delete(t.handoffs).where(t.handoffs.c.expires_at < now - _KEEP))
            await conn.execute(insert(t.handoffs).values(
                token_hash=token_hash, fingerprint=fingerprint, target_host=target_host,
                origin=origin, expires_at=expires_at, used_at=None))

    async def redeem_handoff(self, token_hash: str, *, fingerprint: str, host: str,
                             now: datetime, new_id_hash: str) -> SessionRecord | HandoffRefusal:
        """Spend the token and start the session it carries to ``host``: a new id, the
        origin's user, certificate, factors, second-factor time and creation time (a
        hand-off never extends the absolute lifetime). Or why not."""
        h = t.handoffs.c
        async with self._tx() as conn:
            spent = await conn.execute(update(t.handoffs).where(
                h.token_hash == token_hash, h.used_at.is_(None), h.expires_at > now,
                h.fingerprint == fingerprint, h.target_host == host).values(used_at=now))
            if spent.rowcount != 1:
                return await _why_not(conn, token_hash, fingerprint, host, now)
            origin_id = (await conn.execute(select(h.origin).where(
                h.token_hash == token_hash))).scalar_one()
            row = (await conn.execute(session_query().where(
                t.sessions.c.id_hash == origin_id))).first()
            origin = None if row is None else session_from_row(row)
            if origin is None or origin.fingerprint != fingerprint:
                return HandoffRefusal.ORIGIN_ENDED  # the token stays spent
            session = SessionRecord(new_id_hash, origin.user, fingerprint, origin.created_at,
                                    now, origin.mfa_at, origin.factors, host=host,
                                    origin=origin.id_hash)
            await insert_session(conn, session)
            await self._event(conn, "session", session.id_hash)
            return session


async def _why_not(conn: AsyncConnection, token_hash: str, fingerprint: str, host: str,
                   now: datetime) -> HandoffRefusal:
    """Only after a refused redeem: read the row to say why, for the audit record."""
    row = (await conn.execute(select(t.handoffs).where(
        t.handoffs.c.token_hash == token_hash))).first()
    if row is None:
        return HandoffRefusal.UNKNOWN
    if row.used_at is not None:
        return HandoffRefusal.USED
    if row.fingerprint != fingerprint:
        return HandoffRefusal.OTHER_CERTIFICATE
    if row.target_host != host:
        return HandoffRefusal.OTHER_HOST
    return HandoffRefusal.EXPIRED
