"""Group commit: concurrent batches share transactions, one batch per device per group, failures stay contained."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from central.ingest.committer import GroupCommitter
from central.ingest.errors import StoreError
from central.ingest.memory import InMemoryIngestStore
from central.ingest.metrics import IngestMetrics
from central.ingest.model import BatchContext, BatchOutcome, ContextQuery, DeviceState
from central.ingest.port import PendingBatch
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from protocol.ack import Ack
from protocol.batch import encode_batch
from tests.central.gateway import T0_MS, Gateway
from tests.central.ingest.ingest_db import Seed

METER = "G-METER"


class RecordingStore(InMemoryIngestStore):
    """The in-memory store, remembering the groups it was handed and failing the groups it is told to."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[list[str]] = []
        self.fail_next = 0

    async def commit_batches(self, batches: Sequence[PendingBatch]) -> list[BatchOutcome | Exception]:
        self.groups.append([b.query.device_id for b in batches])
        await asyncio.sleep(0)  # a real store yields while the database works
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("database unavailable")
        return await super().commit_batches(batches)


def service_over(store: InMemoryIngestStore) -> IngestService:
    return IngestService(store, metrics=IngestMetrics.for_registry(CollectorRegistry()), clock_ms=lambda: T0_MS)


async def test_concurrent_batches_share_groups_but_never_a_device() -> None:
    store = RecordingStore()
    gateways = [Gateway() for _ in range(6)]
    for gw in gateways:
        store.add_device(DeviceState(gw.device_id, "verified", {METER: uuid.uuid4()}))
    service = service_over(store)
    first = [encode_batch(gw.many(METER, 3)) for gw in gateways]
    second = [encode_batch(gw.many(METER, 3)) for gw in gateways]
    work = [*zip(gateways, first, strict=True), *zip(gateways, second, strict=True)]
    acks = await asyncio.gather(*(service.handle_readings(gw.device_id, b) for gw, b in work))
    assert all(a.accepted == 3 and a.rejected == () for a in acks)
    assert len(store.readings) == 36
    assert len(store.groups) < 12  # shared transactions
    for group in store.groups:
        assert len(group) == len(set(group))


async def test_a_failed_group_fails_its_batches_only() -> None:
    store = RecordingStore()
    a, b = Gateway(), Gateway()
    for gw in (a, b):
        store.add_device(DeviceState(gw.device_id, "verified", {METER: uuid.uuid4()}))
    service = service_over(store)
    store.fail_next = 1
    with pytest.raises(StoreError):
        await service.handle_readings(a.device_id, encode_batch(a.many(METER, 2)))
    assert store.readings == {}
    ack = await service.handle_readings(b.device_id, encode_batch(b.many(METER, 2)))
    assert ack == Ack(1, 2, 2, 0, ())


async def test_a_failing_decide_does_not_sink_the_group() -> None:
    store = InMemoryIngestStore()
    good, bad = Gateway(), Gateway()
    for gw in (good, bad):
        store.add_device(DeviceState(gw.device_id, "verified", {METER: uuid.uuid4()}))
    committer = GroupCommitter(store)

    def boom(_ctx: BatchContext) -> BatchOutcome:
        raise RuntimeError("bug")

    ok = BatchOutcome(Ack(0, 0, 0, 0, ()))
    results = await asyncio.gather(
        committer.submit(PendingBatch(ContextQuery(bad.device_id, 1, 1, frozenset()), boom)),
        committer.submit(PendingBatch(ContextQuery(good.device_id, 1, 1, frozenset()), lambda _c: ok)),
        return_exceptions=True,
    )
    assert isinstance(results[0], RuntimeError)
    assert results[1] is ok
    await committer.close()


async def test_postgres_group_with_many_devices(seed: Seed, pool: asyncpg.Pool) -> None:
    gateways = [Gateway() for _ in range(8)]
    for gw in gateways:
        await seed.device(gw, "verified", f"M-{gw.device_id[:8]}")
    store = PgIngestStore(pool)
    service = IngestService(store, metrics=IngestMetrics.for_registry(CollectorRegistry()), clock_ms=lambda: T0_MS)
    recs = {gw.device_id: gw.many(f"M-{gw.device_id[:8]}", 10) for gw in gateways}
    # Out of order per device (gaps then fills), all devices at once, twice over.
    rounds = [[r[5:10] for r in recs.values()], [r[0:5] for r in recs.values()], [r[3:7] for r in recs.values()]]
    for batches in rounds:
        acks = await asyncio.gather(*(
            service.handle_readings(gw.device_id, encode_batch(b)) for gw, b in zip(gateways, batches, strict=True)
        ))
        assert all(a.rejected == () for a in acks)
    for gw in gateways:
        assert await seed.stored(gw.device_id) == list(range(1, 11))
    assert await pool.fetchval("SELECT count(*) FROM reading_gaps") == 0
    heads = await pool.fetch("SELECT device_id, last_seq, last_hash FROM reading_chain_heads")
    assert {(h["device_id"], h["last_seq"], bytes(h["last_hash"])) for h in heads} == {
        (d, 10, r[-1].hash()) for d, r in recs.items()
    }
    await service.close()
