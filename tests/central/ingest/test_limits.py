"""Flood limits of ingest (issue 10, D5), as unit tests with the in-memory store and MQTT fake: a batch stops at its
first bad signature, QoS 0 messages are dropped before any work, and each device id is rate limited."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry

import central.ingest.core as ingest_core
from central.ingest.memory import InMemoryIngestStore
from central.ingest.metrics import IngestMetrics
from central.ingest.model import DeviceState
from central.ingest.mqtt import IngestMqtt
from central.ingest.ratelimit import DeviceRateLimiter
from central.ingest.service import IngestService
from central.ingest.settings import IngestSettings
from central.mqtt import InMemoryMqtt
from protocol import topics
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.errors import Reason
from tests.central.device import CENTRAL_KEY
from tests.central.gateway import T0_MS, Gateway, forge

METER = "MTR-0001"


def make(gw: Gateway) -> tuple[InMemoryIngestStore, IngestService, CollectorRegistry]:
    store = InMemoryIngestStore()
    store.add_device(DeviceState(gw.device_id, "verified", {METER: uuid.uuid4()}))
    registry = CollectorRegistry()
    return store, IngestService(store, metrics=IngestMetrics.for_registry(registry), clock_ms=lambda: T0_MS), registry


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the real signature check (it still runs)."""
    calls: list[int] = []
    real = ingest_core.signature_valid

    def counting(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(1)
        return real(public_key, message, signature)

    monkeypatch.setattr(ingest_core, "signature_valid", counting)
    return calls


async def test_a_batch_of_forgeries_costs_one_verification(verifications: list[int]) -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    ack = await service.handle_readings(gw.device_id, encode_batch([forge(gw.read(METER)) for _ in range(1000)]))
    assert len(verifications) == 1
    assert ack.accepted == 0
    assert ack.rejected == tuple((seq, Reason.BAD_SIGNATURE) for seq in range(1, 1001))
    assert store.readings == {}


async def test_records_before_the_first_bad_signature_are_kept(verifications: list[int]) -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    good = gw.many(METER, 3)
    bad = forge(gw.read(METER))
    after = gw.many(METER, 3)  # validly signed, but they follow a forgery in the same batch
    ack = await service.handle_readings(gw.device_id, encode_batch([*good, bad, *after]))
    assert len(verifications) == 4
    assert ack == Ack(first=1, last=7, accepted=3, duplicate=0,
                      rejected=tuple((s, Reason.BAD_SIGNATURE) for s in range(4, 8)))
    assert sorted(seq for _dev, seq in store.readings) == [1, 2, 3]


def test_rate_limiter_burst_refill_and_bounded_memory() -> None:
    limiter = DeviceRateLimiter(2, 3, max_devices=10)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0), "devices have their own buckets"
    assert not limiter.allow("a", 0.2)
    assert limiter.allow("a", 0.5)  # one token back after 1/rate s
    for i in range(1000):
        limiter.allow(f"d{i}", 1.0 + i)
    assert len(limiter) <= 10


async def test_qos0_and_over_limit_messages_are_dropped_before_any_work(verifications: list[int]) -> None:
    gw = Gateway()
    store, service, registry = make(gw)
    bus = InMemoryMqtt()
    now = [0.0]
    IngestMqtt(bus, service, IngestMetrics.for_registry(registry), signer=CENTRAL_KEY,
               clock_s=lambda: now[0]).register(
        IngestSettings(device_messages_per_s=1, device_burst=2)
    )
    await bus.start()
    try:
        await bus.publish(topics.readings(gw.device_id), encode_batch([forge(gw.read(METER))]), qos=0)
        await bus.drain()
        assert verifications == []
        assert not any(m.topic == topics.ack(gw.device_id) for m in bus.published)
        assert registry.get_sample_value("gtx_ingest_messages_total", {"kind": "readings", "result": "qos0"}) == 1

        gw2 = Gateway(key=gw.key)  # restart the chain: seq 1 again, validly signed
        for _ in range(3):
            await bus.publish(topics.readings(gw.device_id), encode_batch([gw2.read(METER)]), qos=1)
        await bus.drain()
        acks = [m for m in bus.published if m.topic == topics.ack(gw.device_id)]
        assert len(acks) == 2, "the third message within the burst window is over the limit"
        assert registry.get_sample_value(
            "gtx_ingest_messages_total", {"kind": "readings", "result": "rate_limited"}) == 1
        now[0] = 1.0  # a token back
        await bus.publish(topics.readings(gw.device_id), encode_batch([gw2.read(METER)]), qos=1)
        await bus.drain()
        assert len([m for m in bus.published if m.topic == topics.ack(gw.device_id)]) == 3
        assert sorted(seq for _dev, seq in store.readings) == [1, 2, 4]
    finally:
        await bus.stop()
