"""Background loops survive any exception, say so once, recover, and show it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.ops.supervise import TaskHealth, keep_running

log = logging.getLogger("test.supervise")


async def until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.001)


class Flaky:
    """A round that fails while ``broken`` is set, with the error it is given."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.broken = True
        self.rounds = 0

    async def __call__(self) -> None:
        self.rounds += 1
        if self.broken:
            raise self.error


@pytest.mark.parametrize("error", [
    RuntimeError("driver said no"),          # not a StoreError: the old follower died of it
    KeyError("bug"),
    OSError("connection refused"),
])
async def test_any_exception_is_survived_logged_once_and_recovered_from(
        error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    health = TaskHealth("thing", stuck_after=60, while_failing="serving from memory")
    flaky = Flaky(error)
    task = asyncio.create_task(keep_running(health, flaky, interval=0.001, max_backoff=0.004,
                                            round_timeout=5, log=log))
    try:
        with caplog.at_level(logging.INFO, logger="test.supervise"):
            await until(lambda: flaky.rounds >= 5)
            assert not task.done()
            assert health.failing and health.failures >= 5
            assert health.problem() is not None and type(error).__name__ in health.problem()
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 1, "one log line per outage, not one per round"
            assert "serving from memory" in errors[0].getMessage()
            assert errors[0].exc_info is not None  # the traceback, once

            flaky.broken = False
            await until(lambda: not health.failing)
            assert health.problem() is None and health.last_success_at is not None
            assert any("recovered" in r.getMessage() for r in caplog.records)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not health.running and health.problem() == "not running"


async def test_a_hanging_round_is_cut_off_and_counted() -> None:
    health = TaskHealth("hang", stuck_after=60)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(keep_running(health, hang, interval=0.001, max_backoff=0.001,
                                            round_timeout=0.01, log=log))
    try:
        await until(lambda: health.failures >= 2)
        assert "longer than" in (health.last_error or "")
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_loop_without_a_recent_success_is_stuck() -> None:
    health = TaskHealth("slow", stuck_after=30, running=True)
    assert health.problem(now=health.started + 29) is None
    assert health.problem(now=health.started + 31) == "stuck: no successful round for 31 s"
    health.last_success = health.started + 100
    assert health.problem(now=health.started + 120) is None


async def test_backoff_grows_to_its_ceiling_then_resets() -> None:
    health = TaskHealth("backoff", stuck_after=60)
    waits: list[float] = []

    async def record_sleep(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0)

    flaky = Flaky(RuntimeError("down"))
    task = asyncio.create_task(keep_running(health, flaky, interval=1.0, max_backoff=8.0,
                                            round_timeout=5, log=log, sleep=record_sleep))
    try:
        await until(lambda: len(waits) >= 5)
        flaky.broken = False
        n = len(waits)
        await until(lambda: len(waits) >= n + 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert waits[:5] == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert waits[-1] == 1.0
