"""Stop codes in the database: the hash of each certificate's one-time code and its use.

Spending a code and suspending its certificate are one transaction
(``suspend_with_stop_code``): the code is marked used by a conditional write, so it
suspends at most once across every node sharing the database, and a failure
half-way leaves the code unused and the certificate as it was. The suspension is
the same status move as ``certgate cert suspend`` (``CertStore._set_status``: its
``cert`` event reaches every node through the change feed, its sessions end).

Must not see a code in the clear (only argon2id hashes), nor check one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, select, update

from gateway.store import tables as t
from gateway.store.certs import CertStore, load_cert_in
from gateway.store.db import serial_hex
from gateway.store.records import CertRecord, CertStatus


class StopCodeStore(CertStore):
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

    async def suspend_with_stop_code(self, serial: int, *, now: datetime
                                     ) -> tuple[CertRecord, bool] | None:
        """Mark the code used and put its certificate on hold (certificateHold), at once:
        the certificate and whether this call suspended it. None when the code was
        already used (another request, another node). A certificate suspended or
        revoked meanwhile stays as it is (False); the code is spent."""
        async with self._tx() as conn:
            done = await conn.execute(update(t.stop_codes).where(
                t.stop_codes.c.serial == serial_hex(serial),
                t.stop_codes.c.used_at.is_(None)).values(used_at=now))
            if done.rowcount != 1:
                return None
            cert = await load_cert_in(conn, serial)
            if cert.status is not CertStatus.ACTIVE:
                return cert, False
            return await self._set_status(conn, serial, status=CertStatus.SUSPENDED.value,
                                          revoked_at=now, reason="certificateHold"), True
