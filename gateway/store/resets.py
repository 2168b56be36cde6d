"""Password resets in the database: one open set-up code per user, kept as a hash.

Setting a reset replaces any earlier one of that user, clears their password and ends
their sessions, in one transaction (an admin resets because the old password may be
known to someone). Spending it is a conditional write (unused, unexpired) in the same
transaction as the new password, so a code works once across every node sharing the
database, and a failure half-way leaves both as they were.

Must not see a code or a password in the clear (only argon2id hashes), nor check one;
lifetimes are the caller's (``expires_at``, ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from gateway.store import tables as t
from gateway.store.base import StoreBase, utc_now
from gateway.store.users import user_id_in


@dataclass(frozen=True, slots=True)
class OpenReset:
    """An unused password reset: its hash (to check a code against), when it ends and
    who set it."""

    code_hash: str
    expires_at: datetime
    created_by: str


class ResetStore(StoreBase):
    """The ``Store`` methods about password resets."""

    async def set_password_reset(self, user: str, code_hash: str, *, created_by: str,
                                 expires_at: datetime, now: datetime) -> list[str]:
        """Open a reset for ``user`` (replacing an earlier one), clear their password and
        end their sessions; the ids of the sessions ended."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            await conn.execute(delete(t.password_resets)
                               .where(t.password_resets.c.user_id == uid))
            await conn.execute(insert(t.password_resets).values(
                user_id=uid, code_hash=code_hash, created_by=created_by, created_at=now,
                expires_at=expires_at, used_at=None))
            await conn.execute(update(t.users).where(t.users.c.id == uid)
                               .values(password_hash=None, updated_at=utc_now()))
            await self._event(conn, "user", user)
            return await self._end_sessions(conn, t.sessions.c.user_id == uid)

    async def open_password_reset(self, user: str, now: datetime) -> OpenReset | None:
        """``user``'s unused, unexpired reset; None for none (or an unknown user)."""
        r, u = t.password_resets.c, t.users.c
        query = (select(r.code_hash, r.expires_at, r.created_by)
                 .join(t.users, u.id == r.user_id)
                 .where(u.name == user, r.used_at.is_(None), r.expires_at > now))
        async with self._tx() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else OpenReset(row.code_hash, row.expires_at,
                                                  row.created_by)

    async def open_password_resets(self, now: datetime) -> dict[str, OpenReset]:
        """Every user's unused, unexpired reset, by user name, in one query (the
        console's users page); a user without one is absent."""
        r, u = t.password_resets.c, t.users.c
        query = (select(u.name, r.code_hash, r.expires_at, r.created_by)
                 .join(t.users, u.id == r.user_id)
                 .where(r.used_at.is_(None), r.expires_at > now))
        async with self._tx() as conn:
            rows = await conn.execute(query)
            return {row.name: OpenReset(row.code_hash, row.expires_at, row.created_by)
                    for row in rows}

    async def complete_password_reset(self, user: str, code_hash: str, password_hash: str,
                                      *, now: datetime) -> bool:
        """Spend the reset whose hash is ``code_hash`` and set the new password, at once;
        False when it was spent (another request, another node) or expired meanwhile."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            r = t.password_resets.c
            done = await conn.execute(update(t.password_resets).where(
                r.user_id == uid, r.code_hash == code_hash, r.used_at.is_(None),
                r.expires_at > now).values(used_at=now))
            if done.rowcount != 1:
                return False
            await conn.execute(update(t.users).where(t.users.c.id == uid)
                               .values(password_hash=password_hash, updated_at=utc_now()))
            await self._event(conn, "user", user)
            return True

    async def cancel_password_reset(self, user: str) -> bool:
        """Forget ``user``'s reset, used or not; whether there was one."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            done = await conn.execute(delete(t.password_resets)
                                      .where(t.password_resets.c.user_id == uid))
            return bool(done.rowcount)
