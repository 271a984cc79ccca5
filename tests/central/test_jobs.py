"""The job runner without wall-clock waits: a fake ``sleep`` records each wait and hands control back at once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from central.jobs import Job, JobRunner


class FakeSleep:
    """Records each requested wait; lets the loop go on at once (after yielding to the event loop)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


class FakeLock:
    def __init__(self, mine: bool) -> None:
        self.mine = mine
        self.held = 0
        self.closed = False

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        self.held += 1
        yield self.mine

    async def close(self) -> None:
        self.closed = True


async def until(predicate: object, rounds: int = 10_000) -> None:
    for _ in range(rounds):
        if callable(predicate) and predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def failures_metric(job: str) -> float:
    return REGISTRY.get_sample_value("gtx_job_failures_total", {"job": job}) or 0.0


async def test_runs_each_job_at_its_interval_with_jitter() -> None:
    sleep, calls = FakeSleep(), 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    runner = JobRunner([Job("tick", 10.0, step, jitter=0.1)], sleep=sleep, rng=random.Random(1))
    async with runner:
        await until(lambda: calls >= 20)
    assert all(9.0 <= w <= 11.0 for w in sleep.waits)
    assert len(set(sleep.waits)) > 1  # jittered, not a fixed beat


async def test_initial_delay_comes_before_the_first_round() -> None:
    sleep, calls = FakeSleep(), 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    async with JobRunner([Job("late", 5.0, step, initial_delay_s=5.0, jitter=0.0)], sleep=sleep):
        await until(lambda: calls >= 1)
    assert sleep.waits[0] == 5.0


async def test_failures_back_off_exponentially_to_the_cap_are_counted_and_never_stop_the_job() -> None:
    sleep, calls = FakeSleep(), 0
    before = failures_metric("flaky-unit")

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls <= 6:
            raise RuntimeError("boom")

    runner = JobRunner([Job("flaky-unit", 1.0, step, jitter=0.0, backoff_cap_s=10.0)], sleep=sleep)
    async with runner:
        await until(lambda: calls >= 8)
        assert runner.failures("flaky-unit") == 0  # a success resets the back-off
    assert sleep.waits[:7] == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 1.0]
    assert failures_metric("flaky-unit") - before == 6
    assert REGISTRY.get_sample_value("gtx_job_last_success_seconds", {"job": "flaky-unit"})


async def test_a_busy_step_runs_again_at_once() -> None:
    sleep, results = FakeSleep(), [True, True, False]

    async def step() -> bool:
        return results.pop(0) if results else False

    async with JobRunner([Job("busy", 0.5, step, jitter=0.0)], sleep=sleep):
        await until(lambda: len(sleep.waits) >= 3)
    assert sleep.waits[:3] == [0, 0, 0.5]


@pytest.mark.parametrize("mine", [True, False])
async def test_leadership_gates_the_step_and_the_lock_is_closed_on_stop(mine: bool) -> None:
    sleep, lock, calls = FakeSleep(), FakeLock(mine), 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    async with JobRunner([Job("leader", 1.0, step, lock=lock)], sleep=sleep):
        await until(lambda: lock.held >= 5)
    assert (calls > 0) is mine
    assert lock.closed


async def test_stop_cancels_waiting_jobs_and_lets_a_running_step_finish() -> None:
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        started.set()
        await release.wait()
        finished.set()

    async def idle() -> None:
        return None

    runner = JobRunner([Job("slow", 1.0, slow), Job("idle", 3600.0, idle)], grace_s=5.0)
    runner.start()
    await started.wait()
    stopping = asyncio.create_task(runner.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the step in progress
    release.set()
    await stopping
    assert finished.is_set()


async def test_stop_cancels_a_step_that_overruns_its_grace() -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.Event().wait()

    runner = JobRunner([Job("stuck", 1.0, stuck)], grace_s=0.01)
    runner.start()
    await started.wait()
    await runner.stop()  # returns: the step was cancelled after the grace


def test_jobs_are_checked() -> None:
    async def step() -> None:
        return None

    with pytest.raises(ValueError, match="interval"):
        Job("bad", 0.0, step)
    with pytest.raises(ValueError, match="jitter"):
        Job("bad", 1.0, step, jitter=1.5)
    with pytest.raises(ValueError, match="unique"):
        JobRunner([Job("twice", 1.0, step), Job("twice", 2.0, step)])
