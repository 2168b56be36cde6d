"""The audit trail's tables: appending chained records and checkpoints, reading them back.

Records arrive already numbered and hashed (``gateway.audit.chain``); this module
only stores them, one transaction per batch (SQLite: ``audit_sqlite``'s own
connection; PostgreSQL: ``COPY``), hands
them back in chain order for ``audit verify`` and ``audit export``, and answers
``audit search`` (an ``AuditQuery``) with one query that the indexes of migration
0005 serve newest first. Rows cross this boundary as plain
dicts whose ``at`` is the chain's ISO text, so what is read back hashes exactly as
what was written. Must not compute or check hashes, and never updates a record; the
only delete is ``delete_audit_through``, a node's oldest records, which retention
(``gateway.audit.retention``) calls only behind a signed checkpoint it checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.audit.chain import FIELDS, format_at, parse_at
from gateway.audit.query import AuditQuery
from gateway.store import tables as t
from gateway.store.audit_sqlite import SqliteAppender
from gateway.store.base import StoreBase

PAGE = 10_000
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE for a duplicate key
assert FIELDS[:3] == ("node", "seq", "at"), "append_audit builds rows in FIELDS order"
_rest = itemgetter(*FIELDS[3:])
_CHECKPOINT_FIELDS = ("node", "seq", "hash", "at", "signature")


def _row_out(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out = dict(zip(fields, row, strict=True))
    out["at"] = format_at(out["at"])
    return out


_BLUNT = frozenset({"type", "decision"})


def search_statement(query: AuditQuery) -> Select[Any]:
    """The one query of ``audit search``: equality filters and an ``at`` range, ordered
    by ``at`` (then node and seq), so an index (filter, at) serves it in order."""
    r = t.audit_records.c
    filters = query.filters()
    # ``type`` and ``decision`` take a handful of values: when a sharper filter is there
    # too, they must not steer SQLite (which keeps no statistics) to their index; the
    # coalesce hides it. PostgreSQL plans by its statistics either way.
    blunt = _BLUNT if filters.keys() - _BLUNT else frozenset()
    where = [func.coalesce(getattr(r, name), "") == value if name in blunt
             else getattr(r, name) == value for name, value in filters.items()]
    if query.since is not None:
        where.append(r.at >= query.since)
    if query.until is not None:
        where.append(r.at < query.until)
    order = [r.at, r.node, r.seq] if query.oldest_first else [r.at.desc(), r.node, r.seq.desc()]
    return select(*[getattr(r, name) for name in FIELDS]).where(*where) \
        .order_by(*order).limit(query.limit)


class AuditStore(StoreBase):
    """The ``Store`` methods about ``audit_records`` and ``audit_checkpoints``."""

    async def audit_head(self, node: str) -> tuple[int, str] | None:
        """The node's newest stored (seq, hash), or None when it has none."""
        r = t.audit_records.c
        async with self._tx() as conn:
            row = (await conn.execute(select(r.seq, r.hash).where(r.node == node)
                                      .order_by(r.seq.desc()).limit(1))).first()
        return None if row is None else (int(row.seq), str(row.hash))

    _sqlite_appender: SqliteAppender | None = None

    async def append_audit(self, rows: list[dict[str, Any]]) -> None:
        """Insert chained records in one transaction (all or none).

        SQLite: through ``SqliteAppender`` (one long-lived connection in its own thread,
        multi-row ``INSERT`` statements); PostgreSQL: asyncpg's binary ``COPY``
        with ``at`` bound as an aware datetime for ``timestamptz``."""
        if not rows:
            return
        if self._engine.dialect.name == "sqlite":
            if self._sqlite_appender is None:
                self._sqlite_appender = SqliteAppender(self._engine)
            await self._sqlite_appender.append(rows)
            return
        values = [(row["node"], row["seq"], parse_at(row["at"]), *_rest(row)) for row in rows]
        async with self._tx() as conn:
            # PostgreSQL: binary COPY, several times cheaper per row than a prepared
            # INSERT. Straight on the asyncpg connection, it runs before SQLAlchemy has
            # sent its (lazy) BEGIN, so outside that transaction: one statement, all
            # rows or none on its own.
            raw = await conn.get_raw_connection()
            try:
                await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                    "audit_records", records=values, columns=list(FIELDS))
            except Exception as exc:
                if getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
                    # As an INSERT would say it: another writer took that (node, seq).
                    raise IntegrityError("COPY audit_records", None, exc) from exc
                raise

    async def close_audit(self) -> None:
        """Close SQLite's audit connection, if one was opened."""
        appender, self._sqlite_appender = self._sqlite_appender, None
        if appender is not None:
            await appender.close()

    async def append_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        async with self._tx() as conn:
            await conn.execute(insert(t.audit_checkpoints).values(
                {**checkpoint, "at": parse_at(checkpoint["at"])}))

    async def audit_nodes(self) -> list[str]:
        """Every node with records or checkpoints, sorted."""
        async with self._tx() as conn:
            nodes = {n for (n,) in await conn.execute(select(t.audit_records.c.node).distinct())}
            nodes |= {n for (n,) in await conn.execute(
                select(t.audit_checkpoints.c.node).distinct())}
        return sorted(nodes)

    async def audit_first_seq(self, node: str, since: datetime) -> int | None:
        """The seq of the node's first record at or after ``since``."""
        r = t.audit_records.c
        async with self._tx() as conn:
            first = (await conn.execute(select(func.min(r.seq)).where(
                r.node == node, r.at >= since))).scalar()
        return None if first is None else int(first)

    async def audit_span(self, node: str, since: datetime | None, until: datetime | None
                         ) -> tuple[int, int] | None:
        """The seqs of the node's first record at or after ``since`` and its last one
        before ``until`` (either open), or None when no record is in between."""
        r = t.audit_records.c
        async with self._tx() as conn:
            first = (await conn.execute(select(func.min(r.seq)).where(
                r.node == node, *([r.at >= since] if since else [])))).scalar()
            last = (await conn.execute(select(func.max(r.seq)).where(
                r.node == node, *([r.at < until] if until else [])))).scalar()
        if first is None or last is None or first > last:
            return None
        return int(first), int(last)

    async def search_audit(self, query: AuditQuery) -> list[dict[str, Any]]:
        """The records matching ``query``, newest first (``oldest_first``: oldest),
        at most ``query.limit`` of them."""
        async with self._tx() as conn:
            rows = (await conn.execute(search_statement(query))).all()
        return [_row_out(row, FIELDS) for row in rows]

    async def audit_rows(self, node: str, *, from_seq: int = 0, to_seq: int | None = None
                         ) -> AsyncIterator[list[dict[str, Any]]]:
        """The node's records with ``from_seq`` <= seq (<= ``to_seq``) in chain order,
        a page at a time."""
        r = t.audit_records.c
        columns = [getattr(r, name) for name in FIELDS]
        after = from_seq - 1
        upto = [] if to_seq is None else [r.seq <= to_seq]
        while True:
            async with self._tx() as conn:
                page = (await conn.execute(select(*columns).where(
                    r.node == node, r.seq > after, *upto).order_by(r.seq).limit(PAGE))).all()
            if not page:
                return
            yield [_row_out(row, FIELDS) for row in page]
            after = page[-1].seq

    async def recent_audit(self, user: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` records about ``user`` (every node), newest first, with
        the fields a person reads: at, type, app, host, path, status, decision, reason,
        method, serial, actor."""
        r = t.audit_records.c
        columns = [r.at, r.type, r.app, r.host, r.path, r.status, r.decision, r.reason,
                   r.method, r.serial, r.actor]
        async with self._tx() as conn:
            rows = (await conn.execute(select(*columns).where(r.user == user)
                                       .order_by(r.at.desc(), r.seq.desc())
                                       .limit(limit))).all()
        return [dict(row._mapping) for row in rows]

    async def audit_checkpoints(self, node: str) -> list[dict[str, Any]]:
        """The node's checkpoints, oldest first."""
        c = t.audit_checkpoints.c
        async with self._tx() as conn:
            rows = (await conn.execute(select(*[getattr(c, n) for n in _CHECKPOINT_FIELDS])
                                       .where(c.node == node).order_by(c.seq, c.id))).all()
        return [_row_out(row, _CHECKPOINT_FIELDS) for row in rows]

    async def audit_bounds(self, node: str) -> tuple[int, int] | None:
        """The node's oldest and newest stored seq, or None when it has none."""
        r = t.audit_records.c
        async with self._tx() as conn:
            low, high = (await conn.execute(select(func.min(r.seq), func.max(r.seq))
                                            .where(r.node == node))).one()
        return None if low is None else (int(low), int(high))

    async def audit_last_seq_before(self, node: str, before: datetime) -> int | None:
        """The seq of the node's newest record written before ``before``."""
        r = t.audit_records.c
        async with self._tx() as conn:
            last = (await conn.execute(select(func.max(r.seq)).where(
                r.node == node, r.at < before))).scalar()
        return None if last is None else int(last)

    async def audit_row(self, node: str, seq: int) -> dict[str, Any] | None:
        r = t.audit_records.c
        async with self._tx() as conn:
            row = (await conn.execute(select(*[getattr(r, n) for n in FIELDS]).where(
                r.node == node, r.seq == seq))).first()
        return None if row is None else _row_out(row, FIELDS)

    async def delete_audit_through(self, node: str, seq: int) -> int:
        """Delete the node's records with seq <= ``seq`` (one transaction); how many.
        Only retention calls this, with ``seq`` a signed checkpoint's."""
        r = t.audit_records.c
        async with self._tx() as conn:
            result = await conn.execute(delete(t.audit_records).where(
                r.node == node, r.seq <= seq))
        return int(result.rowcount or 0)
