"""Running a ``gateway.manage`` use-case for the console without blocking the loop.

Issuing a certificate makes a key (RSA 3072 takes a second), unlocks the CA key and
signs a CRL: CPU and file work that must not hold up the event loop serving every
other request. ``in_worker`` runs the use-case in a worker thread with its own
event loop and its own connection to the database (the same database: the change
reaches this and every other node through the change feed, as a CLI change does),
with the audit trail of the console user (actor ``console:<user>``), whose
checkpoint it signs at the end.

Must not decide anything: the callers pass the use-case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.config import Config
from gateway.manage.trail import AdminTrail
from gateway.store.store import Store

T = TypeVar("T")
Job = Callable[[Store, AdminTrail], Awaitable[T]]


def actor(user: str) -> str:
    """How a console user is named in the audit trail."""
    return f"console:{user}"


async def _run(config: Config, user: str, job: Job[T]) -> tuple[T, list[str]]:
    store = await Store.open(config.database_url, migrate=False)
    try:
        trail = AdminTrail(store, config, actor(user), keep_going=True)
        try:
            result = await job(store, trail)
        finally:
            await trail.close()
        return result, trail.problems
    finally:
        await store.close()


async def in_worker(config: Config, user: str, job: Job[T]) -> tuple[T, list[str]]:
    """``job``'s result and the audit records that could not be written (shown to the
    admin after what was done, as the CLI does); the job's exception otherwise."""
    return await asyncio.to_thread(asyncio.run, _run(config, user, job))
