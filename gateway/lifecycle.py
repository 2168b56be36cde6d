"""Lifecycle building blocks: each long-lived thing is one setup-``yield``-teardown generator.

The shape is aiohttp's ``cleanup_ctx``: the code before ``yield`` opens the resource,
the code after closes it, and the teardown runs only when the setup succeeded.
``Runtime`` and ``run_server`` enter these into one ``contextlib.AsyncExitStack``
each, which gives the two guarantees that matter: stop runs in reverse order of
start, and a failure half-way through start closes exactly what was already opened
before the error propagates.

Must not hold state of its own, and must not swallow a failure of start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger("certgate")


@asynccontextmanager
async def background(coro: Coroutine[Any, Any, Any], name: str
                     ) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coro`` as a task while the context is open; cancel it and wait for it on exit.

    A task that already died is reported, not raised: a background task that
    failed must not stop the shutdown of everything else.
    """
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        # asyncio.wait, not ``await task``: it never raises the task's own
        # cancellation, yet a cancellation of *this* task still propagates.
        await asyncio.wait({task})
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s had failed", name, exc_info=exc)
