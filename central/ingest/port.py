"""The store port ingest needs. Adapters: ``postgres.PgIngestStore`` (real) and ``memory.InMemoryIngestStore``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from central.ingest.model import BatchContext, BatchOutcome, ChainHead, ContextQuery
from protocol.status import DeviceStatus

Decide = Callable[[BatchContext], BatchOutcome]


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """One batch waiting to be judged: what to load for it and the pure function that judges it."""

    query: ContextQuery
    decide: Decide


class IngestStore(Protocol):
    async def commit_batches(self, batches: Sequence[PendingBatch]) -> list[BatchOutcome | Exception]:
        """Judge and store several batches (of distinct devices) in one transaction.

        Under exclusive per-device locks: load each batch's context, call its ``decide`` (pure), and store every
        accepted reading, chain head and gap change; commit once. The result is aligned with ``batches``; an
        exception raised by one ``decide`` is returned in its place (that batch stores nothing, the others do).
        A failure of the store itself raises ``StoreError`` and nothing of the group is stored.
        """
        ...

    async def chain_head(self, device_id: str) -> ChainHead | None:
        """The device's highest stored seq and its record hash, or None when nothing is stored."""
        ...

    async def device_known(self, device_id: str) -> bool: ...

    async def record_status(self, device_id: str, status: DeviceStatus) -> None:
        """Record a device's status message: online, last seen, and its health (unknown devices are ignored)."""
        ...
