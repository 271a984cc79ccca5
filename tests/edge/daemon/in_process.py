"""The edge daemon run in the test's own event loop with in-memory meters: run until a condition holds, then stopped
as on SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edge.daemon import Daemon, MeterInfo, MeterSource, static_meters
from edge.meters.fake import FakeMeterReader


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
