"""Group commit: batches handed in concurrently are judged and stored together, one transaction per group.

One group transaction is in flight per process at a time; batches arriving meanwhile (their records already decoded
and their signatures verified, which is the CPU-heavy part) form the next group, at most one batch per device and
``max_group`` per group. Under load this turns many small transactions (round trips, commits, fsyncs) into few;
when idle a lone batch is committed at once (no waiting to fill a group).
"""

from __future__ import annotations

import asyncio
import contextlib

from central.ingest.model import BatchOutcome
from central.ingest.port import IngestStore, PendingBatch

_Item = tuple[PendingBatch, "asyncio.Future[BatchOutcome]"]


class GroupCommitter:
    def __init__(self, store: IngestStore, *, max_group: int = 32) -> None:
        if max_group < 1:
            raise ValueError("max_group must be >= 1")
        self._store = store
        self._max_group = max_group
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, batch: PendingBatch) -> BatchOutcome:
        """Judge and store ``batch`` in the next group; raises what the store raised for its group."""
        future: asyncio.Future[BatchOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="ingest-group-commit")
        return await future

    async def close(self) -> None:
        """Stop after the group in flight; batches still waiting fail (their devices send them again)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _next_group(self) -> list[_Item]:
        group: list[_Item] = []
        rest: list[_Item] = []
        devices: set[str] = set()
        for item in self._pending:
            device = item[0].query.device_id
            if item[1].done():  # its handler was cancelled
                continue
            if device in devices or len(group) >= self._max_group:
                rest.append(item)
            else:
                devices.add(device)
                group.append(item)
        self._pending = rest
        return group

    async def _drain(self) -> None:
        group: list[_Item] = []
        try:
            while self._pending:
                group = self._next_group()
                if not group:
                    continue
                try:
                    results = await self._store.commit_batches([batch for batch, _f in group])
                except Exception as exc:  # noqa: BLE001 - the store failed: every batch of the group fails
                    for _batch, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_batch, future), result in zip(group, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                group = []
        except asyncio.CancelledError:
            for _batch, future in [*group, *self._pending]:
                if not future.done():
                    future.cancel()
            self._pending = []
            raise
