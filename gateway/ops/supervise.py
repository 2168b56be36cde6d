"""Keeping background loops alive and visible: any exception in a round is survived.

A background loop (the change follower, the CRL re-signer, …) is a *round*
function called again and again. ``keep_running`` calls it, and whatever a round
raises — a ``StoreError``, a bare driver error such as asyncpg's "database is
not currently accepting connections", a bug — is logged once with its traceback,
retried with exponential backoff, and logged again only when the loop recovers.
A round that hangs is cut off after ``round_timeout`` and counts as a failure.

Each loop's ``TaskHealth`` says how it is doing: failing (since when, with which
error), stuck (no successful round for ``stuck_after`` seconds, whatever the
cause) or dead (the loop ended, which should never happen). ``/readyz`` and
``/metrics`` read these records.

Owns the retry loop and the health records. Must not know what a round does, and
must never swallow a cancellation: stopping the gateway stops the loop at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

Round = Callable[[], Awaitable[float | None]]


@dataclass
class TaskHealth:
    """How one background loop is doing; written by ``keep_running`` only."""

    name: str
    stuck_after: float  # seconds without a successful round before it counts as stuck
    while_failing: str = ""  # what that means for the gateway, for the log and /readyz
    started: float = field(default_factory=time.monotonic)
    last_success: float | None = None  # time.monotonic() of the last successful round
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None
    failures: int = 0  # failed rounds in a row
    running: bool = False

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def problem(self, now: float | None = None) -> str | None:
        """None when all is well; else one sentence for ``/readyz``."""
        now = time.monotonic() if now is None else now
        if not self.running:
            return "not running"
        if self.failing:
            return f"failing ({self.failures} round(s) in a row): {self.last_error}"
        since = self.last_success if self.last_success is not None else self.started
        if now - since > self.stuck_after:
            return f"stuck: no successful round for {now - since:.0f} s"
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


async def keep_running(health: TaskHealth, round_fn: Round, *, interval: float,
                       max_backoff: float, round_timeout: float,
                       log: logging.Logger,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Call ``round_fn`` forever: after a success wait what it returned (or
    ``interval``), after a failure back off (doubling up to ``max_backoff``)."""
    backoff = interval
    health.running = True
    try:
        while True:
            wait: float | None
            try:
                async with asyncio.timeout(round_timeout):
                    wait = await round_fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    exc = TimeoutError(f"a round took longer than {round_timeout:.0f} s")
                health.last_error = _describe(exc)
                health.failures += 1
                if health.failing_since is None:
                    health.failing_since = datetime.now(UTC)
                    log.error("%s failed, retrying with backoff%s: %s", health.name,
                              f" ({health.while_failing})" if health.while_failing else "",
                              health.last_error, exc_info=exc)
                backoff = wait = min(max(backoff, interval) * 2, max_backoff)
            else:
                if health.failing_since is not None:
                    log.warning("%s recovered after %d failed round(s)", health.name,
                                health.failures)
                health.failing_since, health.last_error, health.failures = None, None, 0
                health.last_success = time.monotonic()
                health.last_success_at = datetime.now(UTC)
                backoff = interval
            await sleep(interval if wait is None else wait)
    finally:
        health.running = False
