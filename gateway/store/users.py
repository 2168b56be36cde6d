"""Users and their groups: add, read, list, enable/disable, e-mail, password hash, groups.

Each mutation writes a ``user`` event in the same transaction. The ``*_in``
helpers take an open connection so ``certs`` and ``feed`` can read users inside
their own transactions. Must not touch certificates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t
from gateway.store.base import StoreBase, inserted_id, utc_now
from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.records import UserRecord


async def user_id_in(conn: AsyncConnection, name: str) -> int:
    row = (await conn.execute(select(t.users.c.id).where(t.users.c.name == name))).first()
    if row is None:
        raise NotFoundError(f"no user named '{name}'")
    return int(row.id)


async def load_user_in(conn: AsyncConnection, name: str) -> UserRecord:
    row = (await conn.execute(select(t.users).where(t.users.c.name == name))).first()
    if row is None:
        raise NotFoundError(f"no user named '{name}'")
    groups = (await conn.execute(
        select(t.groups.c.name)
        .join(t.user_groups, t.user_groups.c.group_id == t.groups.c.id)
        .where(t.user_groups.c.user_id == row.id)
        .order_by(t.groups.c.name)
    )).scalars().all()
    return user_from_row(row, tuple(groups))


async def all_users_in(conn: AsyncConnection) -> tuple[UserRecord, ...]:
    memberships: dict[int, list[str]] = {}
    rows = await conn.execute(
        select(t.user_groups.c.user_id, t.groups.c.name)
        .join(t.groups, t.groups.c.id == t.user_groups.c.group_id)
    )
    for user_id, group in rows:
        memberships.setdefault(user_id, []).append(group)
    users = await conn.execute(select(t.users).order_by(t.users.c.name))
    return tuple(user_from_row(row, tuple(sorted(memberships.get(row.id, ())))) for row in users)


async def _set_groups(conn: AsyncConnection, user_id: int, groups: Sequence[str]) -> None:
    await conn.execute(delete(t.user_groups).where(t.user_groups.c.user_id == user_id))
    for name in sorted(set(groups)):
        row = (await conn.execute(select(t.groups.c.id).where(t.groups.c.name == name))).first()
        if row is not None:
            group_id = row.id
        else:
            group_id = inserted_id(await conn.execute(insert(t.groups).values(name=name)))
        await conn.execute(insert(t.user_groups).values(user_id=user_id, group_id=group_id))


def user_from_row(row: Row[Any], groups: tuple[str, ...]) -> UserRecord:
    return UserRecord(name=row.name, email=row.email, enabled=bool(row.enabled), groups=groups,
                      password_hash=row.password_hash, created_at=row.created_at)


class UserStore(StoreBase):
    """The ``Store`` methods about users."""

    async def add_user(self, name: str, *, email: str | None = None, groups: Sequence[str] = (),
                       password_hash: str | None = None) -> UserRecord:
        try:
            async with self._tx() as conn:
                stamp = utc_now()
                user_id = inserted_id(await conn.execute(insert(t.users).values(
                    name=name, email=email, enabled=True, password_hash=password_hash,
                    created_at=stamp, updated_at=stamp)))
                await _set_groups(conn, user_id, groups)
                await self._event(conn, "user", name)
                return await load_user_in(conn, name)
        except IntegrityError:
            raise ConflictError(f"a user named '{name}' already exists") from None

    async def get_user(self, name: str) -> UserRecord:
        async with self._tx() as conn:
            return await load_user_in(conn, name)

    async def list_users(self) -> list[UserRecord]:
        async with self._tx() as conn:
            return list(await all_users_in(conn))

    async def _update_user(self, name: str, **values: Any) -> UserRecord:
        async with self._tx() as conn:
            user_id = await user_id_in(conn, name)
            await conn.execute(update(t.users).where(t.users.c.id == user_id)
                               .values(updated_at=utc_now(), **values))
            await self._event(conn, "user", name)
            if values.get("enabled") is False:  # a disabled user's sessions end with it
                await self._end_sessions(conn, t.sessions.c.user_id == user_id)
            return await load_user_in(conn, name)

    async def set_user_enabled(self, name: str, enabled: bool) -> UserRecord:
        return await self._update_user(name, enabled=enabled)

    async def set_user_email(self, name: str, email: str | None) -> UserRecord:
        return await self._update_user(name, email=email)

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        await self._update_user(name, password_hash=password_hash)

    async def set_user_groups(self, name: str, groups: Sequence[str]) -> UserRecord:
        async with self._tx() as conn:
            user_id = await user_id_in(conn, name)
            await _set_groups(conn, user_id, groups)
            await conn.execute(update(t.users).where(t.users.c.id == user_id)
                               .values(updated_at=utc_now()))
            await self._event(conn, "user", name)
            return await load_user_in(conn, name)
