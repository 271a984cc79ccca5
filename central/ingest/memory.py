"""In-memory fake of :class:`central.ingest.port.IngestStore` for unit tests (same semantics as PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from central.ingest.model import (
    AcceptedReading,
    BatchContext,
    BatchOutcome,
    ChainHead,
    ContextQuery,
    DeviceState,
    Gap,
    StoredReading,
)
from central.ingest.port import PendingBatch
from protocol.status import DeviceStatus


@dataclass
class DeviceRow:
    state: DeviceState
    online: bool = False
    last_seen_ms: int | None = None
    status: DeviceStatus | None = None


@dataclass
class InMemoryIngestStore:
    devices: dict[str, DeviceRow] = field(default_factory=dict)
    readings: dict[tuple[str, int], AcceptedReading] = field(default_factory=dict)
    heads: dict[str, ChainHead] = field(default_factory=dict)
    gaps: dict[str, set[Gap]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def add_device(self, state: DeviceState) -> None:
        self.devices[state.device_id] = DeviceRow(state)

    def _stored(self, device_id: str, seq: int) -> StoredReading | None:
        row = self.readings.get((device_id, seq))
        if row is None:
            return None
        r = row.reading
        return StoredReading(
            r.seq, r.meter_serial, r.import_wh, r.export_wh, r.flags, r.prev_hash, row.record_hash, r.timestamp_ms
        )

    def _context(self, q: ContextQuery) -> BatchContext:
        row = self.devices.get(q.device_id)
        seqs = sorted(seq for dev, seq in self.readings if dev == q.device_id)
        stored = {}
        for seq in range(max(q.first_seq - 1, 1), q.last_seq + 2):
            s = self._stored(q.device_id, seq)
            if s is not None:
                stored[seq] = s
        before: dict[str, StoredReading] = {}
        after: dict[str, StoredReading] = {}
        for seq in seqs:
            s = self._stored(q.device_id, seq)
            assert s is not None
            if s.meter_serial not in q.meter_serials:
                continue
            if seq < q.first_seq:
                before[s.meter_serial] = s
            elif seq > q.last_seq and s.meter_serial not in after:
                after[s.meter_serial] = s
        known_gaps = self.gaps.get(q.device_id, set())
        gaps = tuple(sorted(g for g in known_gaps if g.last_seq >= q.first_seq and g.first_seq <= q.last_seq))
        return BatchContext(
            device=row.state if row else None,
            stored=stored,
            meter_before=before,
            meter_after=after,
            head=self.heads.get(q.device_id),
            gaps=gaps,
        )

    async def commit_batches(self, batches: Sequence[PendingBatch]) -> list[BatchOutcome | Exception]:
        assert len({b.query.device_id for b in batches}) == len(batches), "one batch per device per group"
        results: list[BatchOutcome | Exception] = []
        for pending in batches:
            try:
                results.append(await self._commit(pending.query, pending.decide))
            except Exception as exc:  # noqa: BLE001 - mirrors the PostgreSQL store: a failing decide stores nothing
                results.append(exc)
        return results

    async def _commit(self, query: ContextQuery, decide: Callable[[BatchContext], BatchOutcome]) -> BatchOutcome:
        lock = self._locks.setdefault(query.device_id, asyncio.Lock())
        async with lock:
            outcome = decide(self._context(query))
            for acc in outcome.accepted:
                key = (query.device_id, acc.reading.seq)
                assert key not in self.readings, "unique (device, seq) violated"
                self.readings[key] = acc
            if outcome.new_head is not None:
                self.heads[query.device_id] = outcome.new_head
            gaps = self.gaps.setdefault(query.device_id, set())
            gaps.difference_update(outcome.gaps_removed)
            gaps.update(outcome.gaps_added)
            if outcome.accepted and query.device_id in self.devices:
                self.devices[query.device_id].last_seen_ms = int(time.time() * 1000)
            return outcome

    async def chain_head(self, device_id: str) -> ChainHead | None:
        return self.heads.get(device_id)

    async def device_known(self, device_id: str) -> bool:
        return device_id in self.devices

    async def record_status(self, device_id: str, status: DeviceStatus) -> None:
        row = self.devices.get(device_id)
        if row is not None:
            row.online = status.online
            row.status = status
            row.last_seen_ms = int(time.time() * 1000)
