"""D4 (issue 10): readings with old timestamps are rejected with ``bad_timestamp`` (pure core, in-memory store):
before the device's registration, older than ``max_age_ms``, older than the meter's previous record, and a gateway
with an unset clock (timestamps near 0). Nothing rejected is stored."""

from __future__ import annotations

import uuid

from prometheus_client import CollectorRegistry

from central.ingest.core import MAX_AGE_MS, MAX_FUTURE_MS
from central.ingest.memory import InMemoryIngestStore
from central.ingest.metrics import IngestMetrics
from central.ingest.model import DeviceState
from central.ingest.service import IngestService
from protocol.batch import encode_batch
from protocol.errors import Reason
from protocol.record import ZERO_HASH
from tests.central.gateway import T0_MS, Gateway

METER = "TS-METER-1"
OTHER = "TS-METER-2"
DAY_MS = 86_400_000


def make(gw: Gateway, *, registered_ms: int = T0_MS - 365 * DAY_MS, max_age_ms: int = MAX_AGE_MS) -> tuple[
    InMemoryIngestStore, IngestService
]:
    store = InMemoryIngestStore()
    store.add_device(DeviceState(gw.device_id, "verified", {METER: uuid.uuid4(), OTHER: uuid.uuid4()},
                                 registered_ms=registered_ms))
    service = IngestService(store, metrics=IngestMetrics.for_registry(CollectorRegistry()), clock_ms=lambda: T0_MS,
                            max_age_ms=max_age_ms)
    return store, service


async def test_reading_before_the_device_registration_is_rejected() -> None:
    gw = Gateway(now_ms=T0_MS - 3 * DAY_MS)
    store, service = make(gw, registered_ms=T0_MS - DAY_MS)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))
    assert ack.rejected == ((1, Reason.BAD_TIMESTAMP),)
    assert store.readings == {}
    # within the clock tolerance of the registration, and after it: accepted
    gw.seq, gw.prev_hash = 0, ZERO_HASH
    gw.now_ms = T0_MS - DAY_MS - MAX_FUTURE_MS - 1000
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER), gw.read(METER, advance_ms=DAY_MS)]))
    assert (ack.accepted, ack.rejected) == (2, ())


async def test_reading_older_than_the_configured_bound_is_rejected() -> None:
    gw = Gateway(now_ms=T0_MS - 20 * DAY_MS)  # the probe's 20-day-old reading
    store, service = make(gw, max_age_ms=7 * DAY_MS)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))
    assert ack.rejected == ((1, Reason.BAD_TIMESTAMP),)
    assert store.readings == {}
    gw.seq, gw.prev_hash = 0, ZERO_HASH
    gw.now_ms = T0_MS - 7 * DAY_MS + 1000
    assert (await service.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))).accepted == 1


async def test_default_bound_is_sixty_days() -> None:
    gw = Gateway(now_ms=T0_MS - 61 * DAY_MS)
    _store, service = make(gw)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))
    assert ack.rejected == ((1, Reason.BAD_TIMESTAMP),)
    gw.seq, gw.prev_hash = 0, ZERO_HASH
    gw.now_ms = T0_MS - 59 * DAY_MS
    assert (await service.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))).accepted == 1


async def test_unset_gateway_clock_is_rejected() -> None:
    gw = Gateway(now_ms=0)  # an RTC that was never set: 1970
    store, service = make(gw, registered_ms=0, max_age_ms=366 * DAY_MS)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER) for _ in range(3)]))
    assert ack.rejected == tuple((s, Reason.BAD_TIMESTAMP) for s in (1, 2, 3))
    assert store.readings == {}


async def test_reading_older_than_the_meters_previous_record_is_rejected() -> None:
    gw = Gateway()
    store, service = make(gw)
    first = gw.read(METER)
    assert (await service.handle_readings(gw.device_id, encode_batch([first]))).accepted == 1
    # same batch as well as a later one; another meter of the device is independent
    back = gw.read(METER, timestamp_ms=first.timestamp_ms - 1)
    ack = await service.handle_readings(gw.device_id, encode_batch([back]))
    assert ack.rejected == ((2, Reason.BAD_TIMESTAMP),)
    gw.seq, gw.prev_hash = 1, first.hash()
    same = gw.read(METER, timestamp_ms=first.timestamp_ms)  # equal is not older
    other = gw.read(OTHER, timestamp_ms=first.timestamp_ms - 500)
    later = gw.read(METER, timestamp_ms=first.timestamp_ms + 5000)
    older = gw.read(METER, timestamp_ms=first.timestamp_ms + 4000)
    ack = await service.handle_readings(gw.device_id, encode_batch([same, other, later, older]))
    assert (ack.accepted, ack.rejected) == (3, ((5, Reason.BAD_TIMESTAMP),))
    assert sorted(seq for _d, seq in store.readings) == [1, 2, 3, 4]


async def test_a_gap_filled_late_is_accepted_and_a_time_travelling_fork_is_not() -> None:
    gw = Gateway()
    _store, service = make(gw)
    r1 = gw.read(METER)
    r2 = gw.read(METER, advance_ms=10_000)
    r3 = gw.read(METER, advance_ms=10_000)
    assert (await service.handle_readings(gw.device_id, encode_batch([r1, r3]))).accepted == 2
    # a record for seq 2 timestamped after seq 3 (a signed fork with a bad clock) is rejected
    gw.seq, gw.prev_hash = 1, r1.hash()
    late = gw.read(METER, timestamp_ms=r3.timestamp_ms + 1)
    assert late.seq == 2
    # seq 3 names r2 as predecessor, so the fork fails the chain first; the genuine r2 is accepted
    assert (await service.handle_readings(gw.device_id, encode_batch([late]))).rejected == ((2, Reason.CHAIN_MISMATCH),)
    assert (await service.handle_readings(gw.device_id, encode_batch([r2]))).accepted == 1
