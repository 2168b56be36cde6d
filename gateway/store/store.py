"""The async ``Store``: users, groups, certificates, revocations, CRLs and the event feed.

Every mutation is one transaction that also appends its ``events`` row, so a
gateway following the feed never misses a change, and a failure leaves nothing
half-written. Refusals are ``NotFoundError``/``ConflictError`` with one sentence;
an unreachable database is ``DatabaseUnavailableError``.

The methods live with their noun (``users``, ``certs``, ``feed``, ``factors``,
``handoffs``, ``audit``, ``audit_report``, ``stopcodes``, ``downloads``, ``resets``) on
top of ``base.StoreBase`` (the engine, ``_tx``, ``_event``); this module composes them
and owns opening and closing. Never called on the per-request path.
"""

from __future__ import annotations

from gateway.store.audit import AuditStore
from gateway.store.audit_report import AuditReportStore
from gateway.store.certs import CertStore
from gateway.store.db import make_engine, migrate_async
from gateway.store.downloads import DownloadStore
from gateway.store.factors import FactorStore
from gateway.store.feed import FeedStore
from gateway.store.handoffs import HandoffStore
from gateway.store.resets import ResetStore
from gateway.store.stopcodes import StopCodeStore
from gateway.store.users import UserStore


class Store(UserStore, StopCodeStore, CertStore, FeedStore, FactorStore, HandoffStore,
            AuditStore, AuditReportStore, DownloadStore, ResetStore):
    """One database, opened with ``await Store.open(url)`` and closed with ``close()``."""

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        if migrate:
            await migrate_async(url)
        store = cls(make_engine(url), url)
        async with store._tx():
            pass  # fail now, with a clear message, if the database is unreachable
        return store

    async def close(self) -> None:
        await self.close_audit()
        await self._engine.dispose()
