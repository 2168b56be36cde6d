"""The async ``Store``: users, groups, certificates, revocations, CRLs and the event feed.

Every mutation is one transaction that also appends its ``events`` row, so a
gateway following the feed never misses a change, and a failure leaves nothing
half-written. Refusals are ``NotFoundError``/``ConflictError`` with one sentence;
an unreachable database is ``DatabaseUnavailableError``.

Never called on the per-request path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, Row, and_, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import tables as t
from gateway.store.db import (
    _is_connection_error,
    make_engine,
    migrate_async,
    safe_url,
    serial_hex,
    short_cause,
)
from gateway.store.errors import ConflictError, DatabaseUnavailableError, NotFoundError
from gateway.store.records import CertRecord, CertStatus, Event, IdentitySnapshot, UserRecord


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    """One database, opened with ``await Store.open(url)`` and closed with ``close()``."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self._engine = engine
        self._url = url

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        if migrate:
            await migrate_async(url)
        store = cls(make_engine(url), url)
        async with store._tx():
            pass  # fail now, with a clear message, if the database is unreachable
        return store

    async def close(self) -> None:
        await self._engine.dispose()

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
        await conn.execute(insert(t.events).values(kind=kind, key=key, created_at=_now()))

    # --- users --------------------------------------------------------------------------

    async def _user_id(self, conn: AsyncConnection, name: str) -> int:
        row = (await conn.execute(select(t.users.c.id).where(t.users.c.name == name))).first()
        if row is None:
            raise NotFoundError(f"no user named '{name}'")
        return int(row.id)

    async def _set_groups(self, conn: AsyncConnection, user_id: int,
                          groups: Sequence[str]) -> None:
        await conn.execute(delete(t.user_groups).where(t.user_groups.c.user_id == user_id))
        for name in sorted(set(groups)):
            row = (await conn.execute(select(t.groups.c.id).where(t.groups.c.name == name))
                   ).first()
            if row is not None:
                group_id = row.id
            else:
                group_id = _inserted_id(await conn.execute(insert(t.groups).values(name=name)))
            await conn.execute(insert(t.user_groups).values(user_id=user_id, group_id=group_id))

    async def _load_user(self, conn: AsyncConnection, name: str) -> UserRecord:
        row = (await conn.execute(select(t.users).where(t.users.c.name == name))).first()
        if row is None:
            raise NotFoundError(f"no user named '{name}'")
        groups = (await conn.execute(
            select(t.groups.c.name)
            .join(t.user_groups, t.user_groups.c.group_id == t.groups.c.id)
            .where(t.user_groups.c.user_id == row.id)
            .order_by(t.groups.c.name)
        )).scalars().all()
        return _user(row, tuple(groups))

    async def add_user(self, name: str, *, email: str | None = None, groups: Sequence[str] = (),
                       password_hash: str | None = None) -> UserRecord:
        try:
            async with self._tx() as conn:
                now = _now()
                user_id = _inserted_id(await conn.execute(insert(t.users).values(
                    name=name, email=email, enabled=True, password_hash=password_hash,
                    created_at=now, updated_at=now)))
                await self._set_groups(conn, user_id, groups)
                await self._event(conn, "user", name)
                return await self._load_user(conn, name)
        except IntegrityError:
            raise ConflictError(f"a user named '{name}' already exists") from None

    async def get_user(self, name: str) -> UserRecord:
        async with self._tx() as conn:
            return await self._load_user(conn, name)

    async def list_users(self) -> list[UserRecord]:
        async with self._tx() as conn:
            return list(await self._all_users(conn))

    async def _all_users(self, conn: AsyncConnection) -> tuple[UserRecord, ...]:
        memberships: dict[int, list[str]] = {}
        rows = await conn.execute(
            select(t.user_groups.c.user_id, t.groups.c.name)
            .join(t.groups, t.groups.c.id == t.user_groups.c.group_id)
        )
        for user_id, group in rows:
            memberships.setdefault(user_id, []).append(group)
        users = await conn.execute(select(t.users).order_by(t.users.c.name))
        return tuple(_user(row, tuple(sorted(memberships.get(row.id, ())))) for row in users)

    async def _update_user(self, name: str, **values: Any) -> UserRecord:
        async with self._tx() as conn:
            user_id = await self._user_id(conn, name)
            await conn.execute(update(t.users).where(t.users.c.id == user_id)
                               .values(updated_at=_now(), **values))
            await self._event(conn, "user", name)
            return await self._load_user(conn, name)

    async def set_user_enabled(self, name: str, enabled: bool) -> UserRecord:
        return await self._update_user(name, enabled=enabled)

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        await self._update_user(name, password_hash=password_hash)

    async def set_user_groups(self, name: str, groups: Sequence[str]) -> UserRecord:
        async with self._tx() as conn:
            user_id = await self._user_id(conn, name)
            await self._set_groups(conn, user_id, groups)
            await conn.execute(update(t.users).where(t.users.c.id == user_id)
                               .values(updated_at=_now()))
            await self._event(conn, "user", name)
            return await self._load_user(conn, name)

    # --- certificates -------------------------------------------------------------------

    @staticmethod
    def _cert_query() -> Any:
        return select(t.certificates, t.users.c.name.label("user_name")).join(
            t.users, t.users.c.id == t.certificates.c.user_id)

    async def _load_cert(self, conn: AsyncConnection, serial: int) -> CertRecord:
        row = (await conn.execute(
            self._cert_query().where(t.certificates.c.serial == serial_hex(serial)))).first()
        if row is None:
            raise NotFoundError(f"no certificate with serial {serial_hex(serial)}")
        return _cert(row)

    async def _insert_cert(self, conn: AsyncConnection, record: CertRecord) -> None:
        user_id = await self._user_id(conn, record.user)
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
            return await self._load_cert(conn, serial)

    async def list_certificates(
        self, *, user: str | None = None, status: CertStatus | None = None,
        expired: bool | None = None, expiring_before: datetime | None = None,
        now: datetime | None = None,
    ) -> list[CertRecord]:
        now = now or _now()
        query = self._cert_query()
        conditions = []
        if user is not None:
            conditions.append(t.users.c.name == user)
        if status is not None:
            conditions.append(t.certificates.c.status == status.value)
        if expired is True:
            conditions.append(t.certificates.c.not_after <= now)
        elif expired is False:
            conditions.append(t.certificates.c.not_after > now)
        if expiring_before is not None:
            conditions.append(t.certificates.c.not_after <= expiring_before)
        if conditions:
            query = query.where(and_(*conditions))
        async with self._tx() as conn:
            if user is not None:
                await self._user_id(conn, user)
            rows = await conn.execute(query.order_by(t.certificates.c.issued_at,
                                                     t.certificates.c.serial))
            return [_cert(row) for row in rows]

    async def _set_status(self, conn: AsyncConnection, serial: int, **values: Any) -> CertRecord:
        await conn.execute(update(t.certificates)
                           .where(t.certificates.c.serial == serial_hex(serial)).values(**values))
        await self._event(conn, "cert", serial_hex(serial))
        return await self._load_cert(conn, serial)

    async def revoke_certificate(self, serial: int, *, reason: str | None, at: datetime,
                                 invalidity_date: datetime | None = None) -> CertRecord:
        async with self._tx() as conn:
            cert = await self._load_cert(conn, serial)
            if cert.status is CertStatus.REVOKED:
                raise ConflictError(f"certificate {serial_hex(serial)} is already revoked")
            return await self._set_status(conn, serial, status=CertStatus.REVOKED.value,
                                          revoked_at=at, reason=reason,
                                          invalidity_date=invalidity_date)

    async def revoke_user_certificates(self, user: str, *, reason: str | None,
                                       at: datetime) -> list[CertRecord]:
        async with self._tx() as conn:
            user_id = await self._user_id(conn, user)
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
            cert = await self._load_cert(conn, serial)
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
            old = await self._load_cert(conn, old_serial)
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
            rows = await conn.execute(self._cert_query().where(
                t.certificates.c.status != CertStatus.ACTIVE.value
            ).order_by(t.certificates.c.serial))
            return [_cert(row) for row in rows]

    # --- CRLs ---------------------------------------------------------------------------

    async def next_crl_number(self) -> int:
        async with self._tx() as conn:
            return _inserted_id(await conn.execute(insert(t.crl_numbers).values(created_at=_now())))

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

    # --- what the gateway keeps in memory ---------------------------------------------------

    async def identity_snapshot(self) -> IdentitySnapshot:
        async with self._tx() as conn:
            last = (await conn.execute(select(t.events.c.id).order_by(t.events.c.id.desc())
                                       .limit(1))).scalar()
            users = await self._all_users(conn)
            certs = tuple(_cert(row) for row in await conn.execute(self._cert_query()))
            return IdentitySnapshot(users, certs, int(last or 0))

    async def events_after(self, event_id: int, *, limit: int = 1000) -> list[Event]:
        async with self._tx() as conn:
            rows = await conn.execute(select(t.events).where(t.events.c.id > event_id)
                                      .order_by(t.events.c.id).limit(limit))
            return [Event(int(r.id), r.kind, r.key, r.created_at) for r in rows]


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None, "an INSERT always reports its primary key"
    return int(key[0])


def _user(row: Row[Any], groups: tuple[str, ...]) -> UserRecord:
    return UserRecord(name=row.name, email=row.email, enabled=bool(row.enabled), groups=groups,
                      password_hash=row.password_hash, created_at=row.created_at)


def _cert(row: Row[Any]) -> CertRecord:
    return CertRecord(
        serial=int(row.serial, 16), user=row.user_name, fingerprint=row.fingerprint,
        subject=row.subject, not_before=row.not_before, not_after=row.not_after,
        status=CertStatus(row.status), issued_at=row.issued_at, pem=row.pem,
        revoked_at=row.revoked_at, reason=row.reason, invalidity_date=row.invalidity_date,
        replaced_by=int(row.replaced_by, 16) if row.replaced_by else None,
        key_source=row.key_source,
    )
