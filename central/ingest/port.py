"""The store port ingest needs. Adapters: ``postgres.PgIngestStore`` (real) and ``memory.InMemoryIngestStore``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from central.ingest.model import BatchContext, BatchOutcome, ChainHead, ContextQuery


class IngestStore(Protocol):
    async def commit_batch(
        self, query: ContextQuery, decide: Callable[[BatchContext], BatchOutcome]
    ) -> BatchOutcome:
        """Under an exclusive per-device lock: load the context ``query`` names, call ``decide`` (pure), store its
        accepted readings, chain head and gap changes in one transaction, and return the outcome."""
        ...

    async def chain_head(self, device_id: str) -> ChainHead | None:
        """The device's highest stored seq and its record hash, or None when nothing is stored."""
        ...

    async def device_known(self, device_id: str) -> bool: ...

    async def set_online(self, device_id: str, online: bool) -> None:
        """Record a device's status message (unknown devices are ignored)."""
        ...
