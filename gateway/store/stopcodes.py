"""Stop codes in the database: the hash of each certificate's one-time code and its use.

Spending a code is a conditional write (unused, and its certificate still active), so
a code suspends at most once across every node sharing the database. The suspension
itself goes through ``CertStore.suspend_certificate`` (its ``cert`` event reaches every
node through the change feed).

Must not see a code in the clear (only argon2id hashes), nor check one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, select, update

from gateway.store import tables as t
from gateway.store.base import StoreBase
from gateway.store.db import serial_hex
from gateway.store.records import CertStatus


class StopCodeStore(StoreBase):
    """The ``Store`` methods about stop codes."""

    async def set_stop_code(self, serial: int, code_hash: str, *, now: datetime) -> None:
        async with self._tx() as conn:
            await conn.execute(insert(t.stop_codes).values(
                serial=serial_hex(serial), code_hash=code_hash, created_at=now, used_at=None))

    async def stop_code_hashes(self, user: str) -> list[tuple[int, str]]:
        """(serial, hash) of ``user``'s unused codes whose certificate is still active;
        an unknown user has none."""
        c, s = t.certificates.c, t.stop_codes.c
        query = (select(s.serial, s.code_hash)
                 .join(t.certificates, c.serial == s.serial)
                 .join(t.users, t.users.c.id == c.user_id)
                 .where(and_(t.users.c.name == user, s.used_at.is_(None),
                             c.status == CertStatus.ACTIVE.value))
                 .order_by(c.issued_at.desc()))
        async with self._tx() as conn:
            return [(int(row.serial, 16), row.code_hash) for row in await conn.execute(query)]

    async def spend_stop_code(self, serial: int, *, now: datetime) -> bool:
        """Mark the code used; False when it already was (another request, another node)."""
        async with self._tx() as conn:
            done = await conn.execute(update(t.stop_codes).where(
                t.stop_codes.c.serial == serial_hex(serial),
                t.stop_codes.c.used_at.is_(None)).values(used_at=now))
            return bool(done.rowcount == 1)
