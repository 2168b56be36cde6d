"""The access review's figures: aggregate reads over ``audit_records`` and ``certificates``.

Every method takes the review period ``[since, until)`` and answers with a handful
of grouped rows counted by the database (``GROUP BY`` over the ``at`` index), so a
period of millions of records never crosses into memory. Rows come back as the
small NamedTuples below. Read-only: must not write, and must not interpret what
the figures mean (``gateway.manage.report`` and ``gateway.audit.report`` do).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t
from gateway.store.base import StoreBase

# Records that are a gateway's own life, not something a person or an admin did.
LIFECYCLE = ("gateway.start", "gateway.stop")
SIGN_IN_TYPES = ("login", "lockout")


class NodeSpan(NamedTuple):
    node: str
    records: int
    first_at: datetime
    last_at: datetime
    starts: int
    stops: int


class Usage(NamedTuple):
    app: str
    user: str
    requests: int
    first_at: datetime
    last_at: datetime


class DayCount(NamedTuple):
    day: str  # YYYY-MM-DD, UTC
    allowed: int
    denied: int


class ReasonCount(NamedTuple):
    reason: str
    refused: int
    people: int  # distinct users among them (refusals without a known certificate: none)


class Address(NamedTuple):
    host: str | None
    path: str | None
    refused: int
    people: int


class SignIns(NamedTuple):
    user: str | None
    succeeded: int
    failed: int
    refused_locked: int  # attempts refused because sign-in was locked
    lockouts: int  # times the account became locked
    recovery: int  # sign-ins with a recovery code


class AdminRow(NamedTuple):
    at: datetime
    node: str
    type: str
    actor: str
    user: str | None
    serial: str | None
    reason: str | None
    detail: str | None


class CertRow(NamedTuple):
    serial: str
    user: str
    status: str
    issued_at: datetime
    not_after: datetime
    revoked_at: datetime | None
    reason: str | None


def _count_if(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _day(conn: AsyncConnection) -> Any:
    """The record's UTC day as ``YYYY-MM-DD`` text, on either engine."""
    r = t.audit_records.c
    if conn.dialect.name == "sqlite":  # stored as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC)
        return func.substr(r.at, 1, 10)
    return func.to_char(func.timezone("UTC", r.at), literal("YYYY-MM-DD"))


class AuditReportStore(StoreBase):
    """The ``Store`` methods the access-review report reads."""

    @staticmethod
    def _period(since: datetime, until: datetime) -> Any:
        r = t.audit_records.c
        return and_(r.at >= since, r.at < until)

    async def report_nodes(self, since: datetime, until: datetime) -> list[NodeSpan]:
        """Per node: records in the period, the first and last, gateway starts and stops."""
        r = t.audit_records.c
        query = (select(r.node, func.count(), func.min(r.at), func.max(r.at),
                        _count_if(r.type == "gateway.start"), _count_if(r.type == "gateway.stop"))
                 .where(self._period(since, until)).group_by(r.node).order_by(r.node))
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [NodeSpan(row[0], int(row[1]), row[2], row[3], int(row[4] or 0), int(row[5] or 0))
                for row in rows]

    async def report_usage(self, since: datetime, until: datetime) -> list[Usage]:
        """Per app and user: requests let through to the app, first and last."""
        r = t.audit_records.c
        query = (select(r.app, r.user, func.count(), func.min(r.at), func.max(r.at))
                 .where(self._period(since, until), r.type == "access", r.decision == "allow",
                        r.reason == "allowed", r.app.is_not(None), r.user.is_not(None))
                 .group_by(r.app, r.user).order_by(r.app, r.user))
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [Usage(row[0], row[1], int(row[2]), row[3], row[4]) for row in rows]

    async def report_days(self, since: datetime, until: datetime) -> list[DayCount]:
        """Per UTC day with records: allowed and denied decisions."""
        r = t.audit_records.c
        async with self._tx() as conn:
            day = _day(conn)
            rows = (await conn.execute(
                select(day, _count_if(r.decision == "allow"), _count_if(r.decision == "deny"))
                .where(self._period(since, until), r.decision.in_(("allow", "deny")))
                .group_by(day).order_by(day))).all()
        return [DayCount(str(row[0]), int(row[1] or 0), int(row[2] or 0)) for row in rows]

    async def report_denials(self, since: datetime, until: datetime) -> list[ReasonCount]:
        """Denied decisions by reason, most frequent first."""
        r = t.audit_records.c
        count = func.count()
        query = (select(r.reason, count, func.count(r.user.distinct()))
                 .where(self._period(since, until), r.decision == "deny")
                 .group_by(r.reason).order_by(count.desc(), r.reason))
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [ReasonCount(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    async def report_refused_addresses(self, since: datetime, until: datetime, *, limit: int
                                       ) -> list[Address]:
        """The ``limit`` host and path pairs refused most often (both are what the
        client sent: any text at all)."""
        r = t.audit_records.c
        count = func.count()
        query = (select(r.host, r.path, count, func.count(r.user.distinct()))
                 .where(self._period(since, until), r.decision == "deny")
                 .group_by(r.host, r.path).order_by(count.desc(), r.host, r.path).limit(limit))
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [Address(row[0], row[1], int(row[2]), int(row[3])) for row in rows]

    async def report_sign_ins(self, since: datetime, until: datetime) -> list[SignIns]:
        """Per user: sign-ins that worked and failed, lockouts, recovery codes used."""
        r = t.audit_records.c
        login = r.type == "login"
        succeeded = and_(login, r.reason == "login-succeeded")
        query = (select(r.user, _count_if(succeeded),
                        _count_if(and_(login, r.reason == "login-failed")),
                        _count_if(and_(login, r.reason == "locked-out")),
                        _count_if(r.type == "lockout"),
                        _count_if(and_(succeeded, r.factors.like("%recovery%"))))
                 .where(self._period(since, until), r.type.in_(SIGN_IN_TYPES))
                 .group_by(r.user).order_by(r.user))
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [SignIns(row[0], *(int(v or 0) for v in row[1:])) for row in rows]

    async def report_admin(self, since: datetime, until: datetime, *, limit: int
                           ) -> tuple[int, list[AdminRow]]:
        """Records with an actor (admin changes, audit reads) but gateway starts and
        stops: how many, and the newest ``limit`` of them in time order."""
        r = t.audit_records.c
        where = and_(self._period(since, until), r.actor.is_not(None), r.type.not_in(LIFECYCLE))
        async with self._tx() as conn:
            total = int((await conn.execute(select(func.count()).where(where)
                                            .select_from(t.audit_records))).scalar() or 0)
            rows = (await conn.execute(
                select(r.at, r.node, r.type, r.actor, r.user, r.serial, r.reason, r.detail)
                .where(where).order_by(r.at.desc(), r.node, r.seq.desc()).limit(limit))).all()
        return total, [AdminRow(*row) for row in reversed(rows)]

    async def report_certificates(self, since: datetime, until: datetime, *, now: datetime,
                                  expiring_before: datetime) -> list[CertRow]:
        """Certificates issued or revoked in the period, suspended now, or active and
        expiring between ``now`` and ``expiring_before``."""
        c = t.certificates.c
        query = (select(c.serial, t.users.c.name, c.status, c.issued_at, c.not_after,
                        c.revoked_at, c.reason)
                 .join(t.users, t.users.c.id == c.user_id)
                 .where(or_(and_(c.issued_at >= since, c.issued_at < until),
                            and_(c.revoked_at >= since, c.revoked_at < until),
                            c.status == "suspended",
                            and_(c.status == "active", c.not_after > now,
                                 c.not_after <= expiring_before)))
                 .order_by(c.issued_at, c.serial))
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [CertRow(*row) for row in rows]
