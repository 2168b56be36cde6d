"""What other nodes and the CRL publisher read: CRL numbers and records, the event
feed, and the identity snapshot a gateway loads at start.

CRL numbers come from their own table, so two nodes never sign the same number.
Event ids are handed out before commit, so on PostgreSQL a transaction that took
id 9 may commit after the one that took id 10: the snapshot names the ids it
could not see (``gaps``) and ``events_after`` also reads the gaps a follower is
still waiting for. Must not change users or certificates.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import insert, or_, select

from gateway.store import tables as t
from gateway.store.base import StoreBase, inserted_id, utc_now
from gateway.store.certs import cert_from_row, cert_query
from gateway.store.factors import all_sessions_in
from gateway.store.records import Event, IdentitySnapshot
from gateway.store.users import all_users_in

# How far back a snapshot looks for ids a transaction may still commit.
_GAP_WINDOW = 200


class FeedStore(StoreBase):
    """The ``Store`` methods about CRLs, the event feed and the identity snapshot."""

    async def next_crl_number(self) -> int:
        async with self._tx() as conn:
            result = await conn.execute(insert(t.crl_numbers).values(created_at=utc_now()))
            return inserted_id(result)

    async def record_crl(self, number: int, this_update: datetime, next_update: datetime,
                         der: bytes) -> None:
        async with self._tx() as conn:
            await conn.execute(insert(t.crls).values(number=number, this_update=this_update,
                                                     next_update=next_update, der=der))
            await self._event(conn, "crl", str(number))

    async def latest_crl(self) -> tuple[int, datetime, datetime, bytes] | None:
        async with self._tx() as conn:
            row = (await conn.execute(select(t.crls).order_by(t.crls.c.number.desc()).limit(1))
                   ).first()
            if row is None:
                return None
            return int(row.number), row.this_update, row.next_update, bytes(row.der)

    async def identity_snapshot(self) -> IdentitySnapshot:
        async with self._tx() as conn:
            recent = [int(i) for i in (await conn.execute(
                select(t.events.c.id).order_by(t.events.c.id.desc()).limit(_GAP_WINDOW)
            )).scalars()]
            last = recent[0] if recent else 0
            seen = set(recent)
            gaps = tuple(i for i in range(max(last - _GAP_WINDOW, min(seen, default=0)), last)
                         if i not in seen and i > 0)
            users = await all_users_in(conn)
            certs = tuple(cert_from_row(row) for row in await conn.execute(cert_query()))
            sessions = await all_sessions_in(conn)
            return IdentitySnapshot(users, certs, last, sessions, gaps)

    async def events_after(self, event_id: int, *, gaps: Collection[int] = (),
                           limit: int = 1000) -> list[Event]:
        """Events after ``event_id``, and those of ``gaps`` committed meanwhile, by id."""
        condition = t.events.c.id > event_id
        if gaps:
            condition = or_(condition, t.events.c.id.in_(list(gaps)))
        async with self._tx() as conn:
            rows = await conn.execute(select(t.events).where(condition)
                                      .order_by(t.events.c.id).limit(limit))
            return [Event(int(r.id), r.kind, r.key, r.created_at) for r in rows]
