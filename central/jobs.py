"""The one runner of central's periodic background work.

A :class:`Job` is a named ``step`` run every ``interval_s`` seconds (with jitter, so that worker processes started
together drift apart). A job that only one process may run at a time names a :class:`Lock` (leadership through an
advisory lock from :mod:`central.locks`; the PostgreSQL locks are in :mod:`central.db.leadership`): the step runs
only while the lock is held, and a round in which another process holds it is skipped.

One error policy for all of them: a step that raises is logged with the job's name, counted in
``gtx_job_failures_total{job}``, and retried after an exponential back-off (interval doubling per consecutive
failure, capped at ``max(backoff_cap_s, interval_s)``); a job never dies of an error. ``gtx_job_last_success_seconds``
is the wall-clock time of each job's last successful step.

A step may return True to say "more work is waiting": the next round then starts at once (a busy outbox drains
without waiting an interval).

Shutdown (:meth:`JobRunner.stop`): jobs waiting for their next round are cancelled; a step in progress gets
``grace_s`` seconds to finish (a chain submission is not cut in half), then it is cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

JOB_FAILURES = Counter("gtx_job_failures_total", "Background job steps that raised, by job.", ("job",))
JOB_LAST_SUCCESS = Gauge(
    "gtx_job_last_success_seconds", "Unix time of each background job's last successful step.", ("job",),
    multiprocess_mode="max",
)

#: What a step returns: True when more work is waiting (run again at once), anything else to wait an interval.
Step = Callable[[], Awaitable[bool | None]]
Sleep = Callable[[float], Awaitable[None]]


class Lock(Protocol):
    """Leadership for one job: ``hold()`` yields True while this process holds the lock, False when another does."""

    def hold(self) -> AbstractAsyncContextManager[bool]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    step: Step
    #: None: every process runs the step; otherwise only the holder of the lock, round by round.
    lock: Lock | None = None
    #: Each wait is ``interval_s`` times a random factor in [1 - jitter, 1 + jitter].
    jitter: float = 0.1
    #: Wait before the first round (0: run at once).
    initial_delay_s: float = 0.0
    backoff_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"job {self.name}: interval_s must be positive")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"job {self.name}: jitter must be in [0, 1)")


@dataclass
class _Running:
    job: Job
    task: asyncio.Task[None] | None = None
    in_step: bool = False
    failures: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class JobRunner:
    """Runs jobs as asyncio tasks from :meth:`start` to :meth:`stop` (also usable as ``async with runner:``)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        sleep: Sleep = _sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        grace_s: float = 10.0,
    ) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {sorted(names)}")
        self._jobs = [_Running(j) for j in jobs]
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._clock = clock
        self._grace_s = grace_s
        self._stopping = False

    def stopping(self) -> bool:
        return self._stopping

    @property
    def names(self) -> list[str]:
        return [r.job.name for r in self._jobs]

    def failures(self, name: str) -> int:
        """Consecutive failures of a job so far (0 after a success)."""
        return next(r.failures for r in self._jobs if r.job.name == name)

    def delay(self, job: Job, failures: int) -> float:
        """The wait before the next round: the interval (or its back-off after failures), with jitter."""
        base = job.interval_s
        if failures:
            base = min(job.interval_s * 2.0**failures, max(job.backoff_cap_s, job.interval_s))
        return base * (1.0 + self._rng.uniform(-job.jitter, job.jitter))

    def start(self) -> None:
        for running in self._jobs:
            running.task = asyncio.create_task(self._run(running), name=f"job:{running.job.name}")

    async def stop(self) -> None:
        self._stopping = True
        busy = [r for r in self._jobs if r.task is not None and r.in_step]
        for running in self._jobs:
            if running.task is not None and not running.in_step:
                running.task.cancel()
        if busy:
            waiting = [asyncio.ensure_future(r.done.wait()) for r in busy]
            _, pending = await asyncio.wait(waiting, timeout=self._grace_s)
            for fut in pending:
                fut.cancel()
            for running in busy:
                if running.task is not None and not running.task.done():
                    running.task.cancel()
        for running in self._jobs:
            if running.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await running.task
            if running.job.lock is not None:
                await running.job.lock.close()

    async def __aenter__(self) -> JobRunner:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _run(self, running: _Running) -> None:
        job = running.job
        try:
            if job.initial_delay_s > 0:
                await self._sleep(job.initial_delay_s)
            if self.stopping():
                return
            while True:
                more = await self._round(running)
                if self.stopping():
                    return
                if more:
                    await self._sleep(0)
                else:
                    await self._sleep(self.delay(job, running.failures))
        finally:
            running.done.set()

    async def _round(self, running: _Running) -> bool:
        job = running.job
        running.in_step = True
        try:
            async with self._leadership(job) as mine:
                more = bool(await job.step()) if mine else False
        except asyncio.CancelledError:
            raise
        except Exception:
            running.failures += 1
            JOB_FAILURES.labels(job.name).inc()
            log.exception("background job failed", extra={"job": job.name, "failures": running.failures})
            return False
        else:
            running.failures = 0
            JOB_LAST_SUCCESS.labels(job.name).set(self._clock())
            return more
        finally:
            running.in_step = False
            if self._stopping:
                running.done.set()

    @staticmethod
    def _leadership(job: Job) -> AbstractAsyncContextManager[bool]:
        return job.lock.hold() if job.lock is not None else _always()


@contextlib.asynccontextmanager
async def _always() -> AsyncIterator[bool]:
    yield True
