"""The edge daemon run in the test's own event loop with in-memory meters: run until a condition holds, then stopped
as on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from edge.daemon import Daemon, MeterInfo, MeterSource, static_meters
from edge.meters.fake import FakeMeterReader
from edge.status import StatusBoard


def fake_meters(*meters: FakeMeterReader) -> MeterSource:
    """A meter source of in-memory meters, each polled every second."""
    return static_meters([(MeterInfo(m.serial, "fake", "memory", "fake", 1), m) for m in meters])


async def run_until(daemon: Daemon, pred: Callable[[], object], within: float) -> dict[str, Any]:
    """Run ``daemon`` until it is ready and ``pred()`` holds (at most ``within`` seconds), then stop it; returns its
    status snapshot taken while it still ran."""
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        async with asyncio.timeout(within):
            while not pred():  # noqa: ASYNC110 - state lives in fakes and other threads
                await asyncio.sleep(0.05)
        return daemon.status()
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def until(pred: Callable[[], object], within: float, what: str) -> None:
    """Wait (polling every 50 ms) until ``pred()`` holds; fail naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while loop.time() < end:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[StatusBoard]:
    """``daemon`` running in this loop until the block ends (then stopped as on SIGTERM); yields its status board
    once it is ready."""
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        assert daemon.board is not None
        yield daemon.board
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
