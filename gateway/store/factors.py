"""The second factor in the database: TOTP secrets, recovery codes, failures, sessions.

The replay rule and the one-time rules are conditional writes, so they hold across
nodes: a TOTP step is accepted only if it is newer than the last one stored
(``accept_totp_step``), a recovery code only if it is still unused. Every change
to a session writes a ``session`` event in the same transaction, so every node's
in-memory session index follows; a TOTP reset ends the user's sessions with it.
Only a session's ``last_seen`` moves without an event: nodes write it in batches
and read each other's (``gateway.auth.activity``).

Must not see a TOTP secret in the clear (it arrives sealed) nor a session cookie
(only its hash).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t
from gateway.store.base import StoreBase, utc_now
from gateway.store.records import FailureRecord, SessionRecord, TotpRecord
from gateway.store.users import user_id_in


def session_from_row(row: Row[Any]) -> SessionRecord:
    return SessionRecord(row.id_hash, row.name, row.fingerprint, row.created_at, row.last_seen,
                         row.mfa_at, tuple(f for f in row.factors.split(",") if f),
                         row.host, row.origin)


async def insert_session(conn: AsyncConnection, session: SessionRecord) -> None:
    """The ``sessions`` row (the caller writes its event in the same transaction)."""
    uid = await user_id_in(conn, session.user)
    await conn.execute(insert(t.sessions).values(
        id_hash=session.id_hash, user_id=uid, fingerprint=session.fingerprint,
        created_at=session.created_at, last_seen=session.last_seen, mfa_at=session.mfa_at,
        factors=",".join(session.factors), host=session.host, origin=session.origin))


def _failure(row: Row[Any]) -> FailureRecord:
    m = row._mapping  # "count" would be the tuple method
    return FailureRecord(m["subject"], m["count"], m["window_start"], m["locked_until"])


def session_query() -> Any:
    return (select(t.sessions, t.users.c.name)
            .join(t.users, t.users.c.id == t.sessions.c.user_id))


async def all_sessions_in(conn: AsyncConnection) -> tuple[SessionRecord, ...]:
    return tuple(session_from_row(r) for r in await conn.execute(session_query()))


class FactorStore(StoreBase):
    """The ``Store`` methods about TOTP, recovery codes, login failures and sessions."""

    # --- TOTP -------------------------------------------------------------------------

    async def set_totp(self, user: str, secret_sealed: str, *, state: str) -> None:
        """Enroll (or re-enroll) ``user``: a new secret replaces the old, its sessions end."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            await conn.execute(delete(t.totp).where(t.totp.c.user_id == uid))
            await conn.execute(insert(t.totp).values(
                user_id=uid, secret=secret_sealed, state=state, last_step=None,
                created_at=utc_now()))
            await self._end_sessions(conn, t.sessions.c.user_id == uid)

    async def get_totp(self, user: str) -> TotpRecord | None:
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            row = (await conn.execute(select(t.totp).where(t.totp.c.user_id == uid))).first()
            return None if row is None else TotpRecord(user, row.secret, row.state,
                                                       row.last_step)

    async def totp_states(self) -> dict[str, str]:
        """Every enrolled user's authenticator state ("pending", "active"), by user name,
        in one query (the console's users page); a user without one is absent."""
        query = select(t.users.c.name, t.totp.c.state).join(t.users,
                                                             t.users.c.id == t.totp.c.user_id)
        async with self._tx() as conn:
            return {row.name: row.state for row in await conn.execute(query)}

    async def accept_totp_step(self, user: str, step: int, *, confirm: bool = False) -> bool:
        """Record ``step`` as used if it is newer than the last one; False if it is not
        (a replay, possibly on another node). ``confirm`` also marks a pending secret
        active, and is False when it is no longer pending (confirmed meanwhile, on any
        node: the enrollment page works once)."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            values: dict[str, Any] = {"last_step": step}
            where = [t.totp.c.user_id == uid,
                     or_(t.totp.c.last_step.is_(None), t.totp.c.last_step < step)]
            if confirm:
                values["state"] = "active"
                where.append(t.totp.c.state == "pending")
            result = await conn.execute(update(t.totp).where(*where).values(**values))
            return result.rowcount == 1

    async def reset_totp(self, user: str) -> None:
        """Forget the authenticator and the recovery codes; end every session of ``user``."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            await conn.execute(delete(t.totp).where(t.totp.c.user_id == uid))
            await conn.execute(delete(t.recovery_codes).where(t.recovery_codes.c.user_id == uid))
            await self._end_sessions(conn, t.sessions.c.user_id == uid)

    # --- recovery codes ---------------------------------------------------------------

    async def replace_recovery_codes(self, user: str, hashes: Sequence[str]) -> None:
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            await conn.execute(delete(t.recovery_codes).where(t.recovery_codes.c.user_id == uid))
            for code_hash in hashes:
                await conn.execute(insert(t.recovery_codes).values(user_id=uid,
                                                                   code_hash=code_hash))

    async def unused_recovery_codes(self, user: str) -> list[tuple[int, str]]:
        """(id, argon2id hash) of each code not used yet."""
        async with self._tx() as conn:
            uid = await user_id_in(conn, user)
            rows = await conn.execute(select(t.recovery_codes.c.id, t.recovery_codes.c.code_hash)
                                      .where(t.recovery_codes.c.user_id == uid,
                                             t.recovery_codes.c.used_at.is_(None))
                                      .order_by(t.recovery_codes.c.id))
            return [(int(r.id), r.code_hash) for r in rows]

    async def use_recovery_code(self, code_id: int, at: datetime) -> bool:
        """Mark one code used; False if it was used meanwhile (on any node)."""
        async with self._tx() as conn:
            result = await conn.execute(update(t.recovery_codes).where(
                t.recovery_codes.c.id == code_id, t.recovery_codes.c.used_at.is_(None))
                .values(used_at=at))
            return result.rowcount == 1

    # --- failed logins ----------------------------------------------------------------

    async def failures(self, subjects: Iterable[str]) -> dict[str, FailureRecord]:
        async with self._tx() as conn:
            rows = await conn.execute(select(t.login_failures)
                                      .where(t.login_failures.c.subject.in_(list(subjects))))
            return {r.subject: _failure(r) for r in rows}

    async def add_failure(self, subjects: Sequence[str], now: datetime,
                          step: Callable[[FailureRecord], FailureRecord]
                          ) -> list[tuple[FailureRecord, FailureRecord]]:
        """Count one attempt for each subject, atomically: ``step`` turns the stored
        record (count 0 when there was none) into the new one; (before, after) each.

        Parallel attempts, on one node or several, count one after the other: the
        transaction first writes the rows (an insert that does nothing when they
        exist; on SQLite that takes the database's write lock), then reads them FOR
        UPDATE (PostgreSQL's row locks), so no count is lost to a concurrent one.
        """
        wanted = sorted(set(subjects))  # one lock order for every caller: no deadlock
        table = t.login_failures
        async with self._tx() as conn:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            await conn.execute(dialect_insert(table).values([
                {"subject": s, "count": 0, "window_start": now, "locked_until": None}
                for s in wanted]).on_conflict_do_nothing(index_elements=["subject"]))
            rows = await conn.execute(select(table).where(table.c.subject.in_(wanted))
                                      .order_by(table.c.subject).with_for_update())
            pairs = [(before, step(before)) for before in map(_failure, rows)]
            for _, after in pairs:
                await conn.execute(update(table).where(table.c.subject == after.subject)
                                   .values(count=after.count, window_start=after.window_start,
                                           locked_until=after.locked_until))
            return pairs

    async def clear_failures(self, subjects: Iterable[str]) -> int:
        """Forget failures and lifts locks (``user unlock``); how many subjects had some."""
        async with self._tx() as conn:
            result = await conn.execute(delete(t.login_failures)
                                        .where(t.login_failures.c.subject.in_(list(subjects))))
            return int(result.rowcount or 0)

    async def locked_subjects(self, now: datetime) -> list[FailureRecord]:
        async with self._tx() as conn:
            rows = await conn.execute(select(t.login_failures)
                                      .where(t.login_failures.c.locked_until > now))
            return [_failure(r) for r in rows]

    # --- sessions ---------------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None:
        async with self._tx() as conn:
            await insert_session(conn, session)
            await self._event(conn, "session", session.id_hash)

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        async with self._tx() as conn:
            row = (await conn.execute(session_query()
                                      .where(t.sessions.c.id_hash == id_hash))).first()
            return None if row is None else session_from_row(row)

    async def touch_sessions(self, seen: dict[str, datetime]) -> None:
        """Move each session's ``last_seen`` forward to when a node last saw it used (never
        back), in one statement per batch and without an event: nodes share use of
        sessions by reading ``sessions_seen_since``, so the feed is not flooded."""
        if not seen:
            return
        c = t.sessions.c
        statement = (update(t.sessions)
                     .where(c.id_hash == bindparam("h"), c.last_seen < bindparam("t"))
                     .values(last_seen=bindparam("t")))
        async with self._tx() as conn:
            await conn.execute(statement, [{"h": h, "t": at} for h, at in seen.items()])

    async def sessions_seen_since(self, since: datetime) -> list[tuple[str, datetime]]:
        """(id hash, last_seen) of the sessions used after ``since``, on any node."""
        c = t.sessions.c
        async with self._tx() as conn:
            rows = await conn.execute(select(c.id_hash, c.last_seen).where(c.last_seen > since))
            return [(r.id_hash, r.last_seen) for r in rows]

    async def list_sessions(self, user: str | None = None) -> list[SessionRecord]:
        async with self._tx() as conn:
            query = session_query().order_by(t.sessions.c.created_at)
            if user is not None:
                query = query.where(t.users.c.name == user)
            return [session_from_row(r) for r in await conn.execute(query)]

    async def end_sessions(self, *, id_prefix: str | None = None, user: str | None = None,
                           fingerprint: str | None = None) -> list[str]:
        """End sessions by (a prefix of) their id, by user or by certificate, with the
        sessions handed off from them; their ids."""
        conditions = []
        if id_prefix is not None:
            conditions.append(t.sessions.c.id_hash.startswith(id_prefix, autoescape=True))
        if fingerprint is not None:
            conditions.append(t.sessions.c.fingerprint == fingerprint)
        async with self._tx() as conn:
            if user is not None:
                conditions.append(t.sessions.c.user_id == await user_id_in(conn, user))
            if not conditions:
                return []
            return await self._end_sessions(conn, and_(*conditions))
