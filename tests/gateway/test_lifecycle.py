"""``background``: a task lives exactly as long as its context, and its death is reported."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from gateway.lifecycle import background


async def test_task_runs_inside_and_is_cancelled_on_exit() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async with background(forever(), "forever") as task:
        await started.wait()
        assert not task.done()
    assert task.cancelled()


async def test_a_task_that_died_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def dies() -> None:
        raise ValueError("boom")

    async with background(dies(), "dies") as task:
        await asyncio.wait({task})
    assert "background task dies had failed" in caplog.text and "boom" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR


async def test_teardown_runs_in_reverse_order_and_after_a_failed_step() -> None:
    order: list[str] = []
    running = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def note(name: str) -> None:
        running[name].set()
        try:
            await asyncio.Event().wait()
        finally:
            order.append(name)

    with pytest.raises(RuntimeError, match="third step"):
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(background(note("first"), "first"))
            await stack.enter_async_context(background(note("second"), "second"))
            await asyncio.gather(*(e.wait() for e in running.values()))
            raise RuntimeError("third step")
    assert order == ["second", "first"]


async def test_cancelling_the_owner_is_not_swallowed() -> None:
    inside = asyncio.Event()

    async def owner() -> None:
        async with background(asyncio.Event().wait(), "child"):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(owner())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
