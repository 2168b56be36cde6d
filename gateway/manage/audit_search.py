"""``audit search``: a reviewer's filters, checked and turned into an ``AuditQuery``.

Every value is refused with one sentence when it can't match anything sensible (a
serial that is not hex, an unknown decision, ``--until`` before ``--since``), and
put into the form the table stores: serials as ``cert list`` prints them
(uppercase hex), references in lowercase. Never prints; refuses with ``ManageError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from gateway.audit.query import DECISIONS, MAX_LIMIT, AuditQuery
from gateway.manage.audit import parse_since
from gateway.manage.errors import ManageError
from gateway.store.db import serial_from_text, serial_hex
from gateway.store.store import Store

_TYPE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class SearchResult:
    records: list[dict[str, Any]]
    more: bool  # more records match than the limit let through
    query: AuditQuery


def _text(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or value != value.strip() or len(value) > 256:
        raise ManageError(f"{option} '{value}' is empty, too long or has surrounding spaces")
    return value


def build_query(*, now: datetime, user: str | None = None, app: str | None = None,
                decision: str | None = None, type_: str | None = None, cert: str | None = None,
                ref: str | None = None, since: str | None = None, until: str | None = None,
                limit: int = 100, oldest_first: bool = False) -> AuditQuery:
    """The query for what was typed, or ``ManageError`` naming the option that is wrong."""
    if decision is not None and decision not in DECISIONS:
        raise ManageError(f"--decision '{decision}' is not one of {', '.join(DECISIONS)}")
    if type_ is not None and not _TYPE.fullmatch(type_):
        raise ManageError(f"--type '{type_}' is not a record type (access, login, "
                          "session.end, gateway.start …)")
    serial = None
    if cert is not None:
        try:
            serial = serial_hex(serial_from_text(cert))
        except ValueError as exc:
            raise ManageError(f"--cert: {exc}") from None
    if ref is not None:
        if not _REFERENCE.fullmatch(ref.strip()):
            raise ManageError(f"--ref '{ref}' is not a reference (the letters and digits "
                              "shown on a refusal page, such as 3f2a9c01b7de)")
        ref = ref.strip().lower()
    if not 1 <= limit <= MAX_LIMIT:
        raise ManageError(f"--limit {limit} is outside 1 to {MAX_LIMIT:,}")
    start = parse_since(since, now) if since else None
    end = parse_since(until, now, "--until") if until else None
    if start is not None and end is not None and end <= start:
        raise ManageError(f"--until ({end.isoformat()}) is not after --since "
                          f"({start.isoformat()}): nothing can match")
    return AuditQuery(user=_text("--user", user), app=_text("--app", app), decision=decision,
                      type=type_, serial=serial, reference=ref, since=start, until=end,
                      limit=limit, oldest_first=oldest_first)


async def search_audit(store: Store, query: AuditQuery) -> SearchResult:
    """The newest (or oldest) ``query.limit`` matching records, and whether more match."""
    rows = await store.search_audit(replace(query, limit=query.limit + 1))
    return SearchResult(rows[:query.limit], len(rows) > query.limit, query)
