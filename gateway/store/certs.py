"""Certificates: store, read, list, and the status moves (revoke, suspend, resume, renew).

Each change writes a ``cert`` event in the same transaction. Status moves refuse
with ``ConflictError`` when the certificate is not in the state they start from
(a revoked certificate is never brought back). Must not build or sign anything:
the certificates arrive issued, from ``pki``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t
from gateway.store.base import StoreBase, utc_now
from gateway.store.db import serial_hex
from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.records import CertRecord, CertStatus
from gateway.store.users import user_id_in


def cert_query() -> Any:
    """Certificates joined with their owner's name (``user_name``)."""
    return select(t.certificates, t.users.c.name.label("user_name")).join(
        t.users, t.users.c.id == t.certificates.c.user_id)


async def load_cert_in(conn: AsyncConnection, serial: int) -> CertRecord:
    row = (await conn.execute(
        cert_query().where(t.certificates.c.serial == serial_hex(serial)))).first()
    if row is None:
        raise NotFoundError(f"no certificate with serial {serial_hex(serial)}")
    return cert_from_row(row)


def cert_from_row(row: Row[Any]) -> CertRecord:
    return CertRecord(
        serial=int(row.serial, 16), user=row.user_name, fingerprint=row.fingerprint,
        subject=row.subject, not_before=row.not_before, not_after=row.not_after,
        status=CertStatus(row.status), issued_at=row.issued_at, pem=row.pem,
        revoked_at=row.revoked_at, reason=row.reason, invalidity_date=row.invalidity_date,
        replaced_by=int(row.replaced_by, 16) if row.replaced_by else None,
        key_source=row.key_source,
    )


class CertStore(StoreBase):
    """The ``Store`` methods about certificates."""

    async def _insert_cert(self, conn: AsyncConnection, record: CertRecord) -> None:
        user_id = await user_id_in(conn, record.user)
        try:
            async with conn.begin_nested():
                await conn.execute(insert(t.certificates).values(
                    serial=serial_hex(record.serial), user_id=user_id,
                    fingerprint=record.fingerprint.lower(), subject=record.subject,
                    not_before=record.not_before, not_after=record.not_after,
                    status=record.status.value, issued_at=record.issued_at,
                    revoked_at=record.revoked_at, reason=record.reason,
                    invalidity_date=record.invalidity_date,
                    replaced_by=serial_hex(record.replaced_by) if record.replaced_by else None,
                    key_source=record.key_source, pem=record.pem))
        except IntegrityError:
            raise ConflictError(
                f"a certificate with serial {serial_hex(record.serial)} or the same "
                "fingerprint is already stored") from None
        await self._event(conn, "cert", serial_hex(record.serial))

    async def add_certificate(self, record: CertRecord) -> None:
        async with self._tx() as conn:
            await self._insert_cert(conn, record)

    async def get_certificate(self, serial: int) -> CertRecord:
        async with self._tx() as conn:
            return await load_cert_in(conn, serial)

    async def list_certificates(
        self, *, user: str | None = None, status: CertStatus | None = None,
        expired: bool | None = None, expiring_before: datetime | None = None,
        now: datetime | None = None,
    ) -> list[CertRecord]:
        at = now or utc_now()
        query = cert_query()
        conditions = []
        if user is not None:
            conditions.append(t.users.c.name == user)
        if status is not None:
            conditions.append(t.certificates.c.status == status.value)
        if expired is True:
            conditions.append(t.certificates.c.not_after <= at)
        elif expired is False:
            conditions.append(t.certificates.c.not_after > at)
        if expiring_before is not None:
            conditions.append(t.certificates.c.not_after <= expiring_before)
        if conditions:
            query = query.where(and_(*conditions))
        async with self._tx() as conn:
            if user is not None:
                await user_id_in(conn, user)
            rows = await conn.execute(query.order_by(t.certificates.c.issued_at,
                                                     t.certificates.c.serial))
            return [cert_from_row(row) for row in rows]

    async def _set_status(self, conn: AsyncConnection, serial: int, **values: Any) -> CertRecord:
        await conn.execute(update(t.certificates)
                           .where(t.certificates.c.serial == serial_hex(serial)).values(**values))
        await self._event(conn, "cert", serial_hex(serial))
        cert = await load_cert_in(conn, serial)
        if cert.status is not CertStatus.ACTIVE:  # revoked or suspended: its sessions end
            await self._end_sessions(conn, t.sessions.c.fingerprint == cert.fingerprint)
        return cert

    async def revoke_certificate(self, serial: int, *, reason: str | None, at: datetime,
                                 invalidity_date: datetime | None = None) -> CertRecord:
        async with self._tx() as conn:
            cert = await load_cert_in(conn, serial)
            if cert.status is CertStatus.REVOKED:
                raise ConflictError(f"certificate {serial_hex(serial)} is already revoked")
            return await self._set_status(conn, serial, status=CertStatus.REVOKED.value,
                                          revoked_at=at, reason=reason,
                                          invalidity_date=invalidity_date)

    async def revoke_user_certificates(self, user: str, *, reason: str | None,
                                       at: datetime) -> list[CertRecord]:
        async with self._tx() as conn:
            user_id = await user_id_in(conn, user)
            serials = (await conn.execute(
                select(t.certificates.c.serial).where(and_(
                    t.certificates.c.user_id == user_id,
                    t.certificates.c.status != CertStatus.REVOKED.value)))).scalars().all()
            return [
                await self._set_status(conn, int(s, 16), status=CertStatus.REVOKED.value,
                                       revoked_at=at, reason=reason)
                for s in serials
            ]

    async def _transition(self, serial: int, *, only_from: CertStatus, to: CertStatus,
                          **values: Any) -> CertRecord:
        async with self._tx() as conn:
            cert = await load_cert_in(conn, serial)
            if cert.status is not only_from:
                raise ConflictError(f"certificate {serial_hex(serial)} is "
                                    f"{cert.status.value}, not {only_from.value}")
            return await self._set_status(conn, serial, status=to.value, **values)

    async def suspend_certificate(self, serial: int, *, at: datetime) -> CertRecord:
        return await self._transition(serial, only_from=CertStatus.ACTIVE,
                                      to=CertStatus.SUSPENDED, revoked_at=at,
                                      reason="certificateHold")

    async def resume_certificate(self, serial: int) -> CertRecord:
        return await self._transition(serial, only_from=CertStatus.SUSPENDED,
                                      to=CertStatus.ACTIVE, revoked_at=None, reason=None)

    async def supersede_certificate(self, old_serial: int, new_record: CertRecord, *,
                                    at: datetime) -> None:
        async with self._tx() as conn:
            old = await load_cert_in(conn, old_serial)
            if old.status is CertStatus.REVOKED:
                raise ConflictError(
                    f"certificate {serial_hex(old_serial)} is revoked; issue a new one instead")
            if old.user != new_record.user:
                raise ConflictError("a renewal must be for the same user")
            await self._insert_cert(conn, new_record)
            await self._set_status(conn, old_serial, status=CertStatus.REVOKED.value,
                                   revoked_at=at, reason="superseded",
                                   replaced_by=serial_hex(new_record.serial))

    async def revoked_certificates(self) -> list[CertRecord]:
        async with self._tx() as conn:
            rows = await conn.execute(cert_query().where(
                t.certificates.c.status != CertStatus.ACTIVE.value
            ).order_by(t.certificates.c.serial))
            return [cert_from_row(row) for row in rows]

