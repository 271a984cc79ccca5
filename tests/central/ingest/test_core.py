"""Ingest decisions through the service with the in-memory store (fast; the same cases run against PostgreSQL and
Mosquitto in test_postgres.py and test_end_to_end.py)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from central.ingest.memory import InMemoryIngestStore
from central.ingest.metrics import IngestMetrics
from central.ingest.model import DeviceState, Gap
from central.ingest.service import IngestService
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.errors import Reason
from protocol.keys import DeviceKey
from protocol.record import ZERO_HASH, Flags
from protocol.sync import SyncRequest
from tests.central.gateway import T0_MS, Gateway, forge

METER = "MTR-0001"
OTHER_METER = "MTR-0002"


def make(*gateways: Gateway, status: str = "verified", meters: tuple[str, ...] = (METER,)) -> tuple[
    InMemoryIngestStore, IngestService, CollectorRegistry
]:
    store = InMemoryIngestStore()
    for gw in gateways:
        store.add_device(DeviceState(gw.device_id, status, {m: uuid.uuid4() for m in meters}))
    registry = CollectorRegistry()
    service = IngestService(store, metrics=IngestMetrics.for_registry(registry), clock_ms=lambda: T0_MS)
    return store, service, registry


def seqs(store: InMemoryIngestStore) -> list[int]:
    return sorted(seq for _dev, seq in store.readings)


async def test_accepts_a_signed_chain_and_moves_the_head() -> None:
    gw = Gateway()
    store, service, registry = make(gw)
    recs = gw.many(METER, 5)
    ack = await service.handle_readings(gw.device_id, encode_batch(recs))
    assert ack == Ack(first=1, last=5, accepted=5, duplicate=0, rejected=())
    assert seqs(store) == [1, 2, 3, 4, 5]
    assert store.heads[gw.device_id].last_seq == 5
    assert store.heads[gw.device_id].last_hash == recs[-1].hash()
    assert store.readings[(gw.device_id, 3)].raw == recs[2].encode()
    assert registry.get_sample_value("gtx_ingest_records_total", {"outcome": "accepted"}) == 5


async def test_unknown_device_rejects_everything() -> None:
    gw = Gateway()
    store, service, _ = make()
    ack = await service.handle_readings(gw.device_id, encode_batch(gw.many(METER, 2)))
    assert ack.rejected == ((1, Reason.UNKNOWN_DEVICE), (2, Reason.UNKNOWN_DEVICE))
    assert store.readings == {}


@pytest.mark.parametrize("status", ["pending", "suspended", "revoked"])
async def test_device_not_verified(status: str) -> None:
    gw = Gateway()
    store, service, _ = make(gw, status=status)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))
    assert ack.rejected == ((1, Reason.DEVICE_NOT_VERIFIED),)
    assert store.readings == {}


async def test_meter_of_another_device_is_not_bound() -> None:
    mine, theirs = Gateway(), Gateway()
    store, service, _ = make(mine)
    store.add_device(DeviceState(theirs.device_id, "verified", {OTHER_METER: uuid.uuid4()}))
    ack = await service.handle_readings(mine.device_id, encode_batch([mine.read(OTHER_METER)]))
    assert ack.rejected == ((1, Reason.METER_NOT_BOUND),)
    assert store.readings == {}


async def test_forged_signature() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    ack = await service.handle_readings(gw.device_id, encode_batch([forge(gw.read(METER))]))
    assert ack.rejected == ((1, Reason.BAD_SIGNATURE),)
    assert store.readings == {}


async def test_record_signed_by_another_key_claiming_the_device() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    impostor = Gateway(key=DeviceKey.generate())
    rec = impostor.read(METER)
    # Same bytes but with the victim's public key put in: the signature no longer matches.
    raw = rec.encode()[:5] + gw.key.public_key + rec.encode()[37:]
    ack = await service.handle_readings(gw.device_id, encode_batch([raw]))
    assert ack.rejected == ((1, Reason.BAD_SIGNATURE),)
    assert store.readings == {}


async def test_record_of_another_device_on_my_topic_is_malformed() -> None:
    mine, other = Gateway(), Gateway()
    store, service, _ = make(mine, other)
    ack = await service.handle_readings(mine.device_id, encode_batch([other.read(METER)]))
    assert ack.rejected == ((1, Reason.MALFORMED),)
    assert store.readings == {}


async def test_duplicate_delivery_is_stored_once() -> None:
    gw = Gateway()
    store, service, registry = make(gw)
    batch = encode_batch(gw.many(METER, 3))
    assert (await service.handle_readings(gw.device_id, batch)).accepted == 3
    again = await service.handle_readings(gw.device_id, batch)
    assert again == Ack(first=1, last=3, accepted=0, duplicate=3, rejected=())
    assert seqs(store) == [1, 2, 3]
    assert registry.get_sample_value("gtx_ingest_records_total", {"outcome": "duplicate"}) == 3


async def test_duplicates_inside_one_overlapping_batch() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    recs = gw.many(METER, 4)
    await service.handle_readings(gw.device_id, encode_batch(recs[:2]))
    ack = await service.handle_readings(gw.device_id, encode_batch(recs))
    assert ack == Ack(first=1, last=4, accepted=2, duplicate=2, rejected=())
    assert seqs(store) == [1, 2, 3, 4]


async def test_replayed_record_with_different_bytes_for_a_stored_seq_is_a_chain_mismatch() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    first = gw.read(METER)
    await service.handle_readings(gw.device_id, encode_batch([first]))
    fork = Gateway(key=gw.key).read(METER, import_step=99)  # same key, same seq 1, other content
    ack = await service.handle_readings(gw.device_id, encode_batch([fork]))
    assert ack.rejected == ((1, Reason.CHAIN_MISMATCH),)
    assert store.readings[(gw.device_id, 1)].raw == first.encode()


async def test_chain_break() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    await service.handle_readings(gw.device_id, encode_batch(gw.many(METER, 2)))
    bad = gw.read(METER, prev_hash=b"\x11" * 32)
    ack = await service.handle_readings(gw.device_id, encode_batch([bad]))
    assert ack.rejected == ((3, Reason.CHAIN_MISMATCH),)
    assert seqs(store) == [1, 2]


async def test_chain_break_inside_a_batch() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    recs = [gw.read(METER), gw.read(METER, prev_hash=b"\x22" * 32), gw.read(METER)]
    ack = await service.handle_readings(gw.device_id, encode_batch(recs))
    assert ack.rejected == ((2, Reason.CHAIN_MISMATCH),)
    # seq 3 names seq 2's hash; central never stored seq 2, so it cannot judge the link and accepts it.
    assert seqs(store) == [1, 3]
    assert store.gaps[gw.device_id] == {Gap(2, 2)}


async def test_stored_successor_must_name_the_record() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    recs = gw.many(METER, 3)
    await service.handle_readings(gw.device_id, encode_batch([recs[0], recs[2]]))
    other_two = Gateway(key=gw.key, seq=1, prev_hash=recs[0].hash()).read(METER, import_step=77)
    ack = await service.handle_readings(gw.device_id, encode_batch([other_two]))
    assert ack.rejected == ((2, Reason.CHAIN_MISMATCH),)
    assert (await service.handle_readings(gw.device_id, encode_batch([recs[1]]))).accepted == 1
    assert seqs(store) == [1, 2, 3]


async def test_clock_ten_minutes_ahead() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER, timestamp_ms=T0_MS + 600_000)]))
    assert ack.rejected == ((1, Reason.BAD_TIMESTAMP),)
    assert store.readings == {}
    ok = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER, timestamp_ms=T0_MS + 240_000)]))
    assert ok.accepted == 1


async def test_register_decrease() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    await service.handle_readings(gw.device_id, encode_batch([gw.read(METER, import_wh=500, export_wh=50)]))
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER, import_wh=499, export_wh=60)]))
    assert ack.rejected == ((2, Reason.REGISTER_DECREASE),)
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER, import_wh=600, export_wh=49)]))
    assert ack.rejected == ((3, Reason.REGISTER_DECREASE),)
    assert seqs(store) == [1]


async def test_meter_replaced_may_restart_registers() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    recs = [
        gw.read(METER, import_wh=5000, export_wh=900),
        gw.read(METER, import_wh=3, export_wh=0, flags=Flags.METER_REPLACED),
        gw.read(METER, import_wh=4, export_wh=1),
    ]
    assert (await service.handle_readings(gw.device_id, encode_batch(recs))).accepted == 3
    assert seqs(store) == [1, 2, 3]


async def test_register_checked_against_a_later_stored_reading() -> None:
    gw = Gateway()
    _store, service, _ = make(gw)
    recs = [gw.read(METER, import_wh=100), gw.read(METER, import_wh=200), gw.read(METER, import_wh=150)]
    # Live record 3 arrives before the backlog (1, 2): record 2 would make 3 a decrease.
    assert (await service.handle_readings(gw.device_id, encode_batch([recs[0], recs[2]]))).accepted == 2
    ack = await service.handle_readings(gw.device_id, encode_batch([recs[1]]))
    assert ack.rejected == ((2, Reason.REGISTER_DECREASE),)


async def test_registers_are_per_meter() -> None:
    gw = Gateway()
    _store, service, _ = make(gw, meters=(METER, OTHER_METER))
    recs = [gw.read(METER, import_wh=10_000), gw.read(OTHER_METER, import_wh=5)]
    assert (await service.handle_readings(gw.device_id, encode_batch(recs))).accepted == 2


async def test_checks_run_in_the_specified_order() -> None:
    gw = Gateway()
    _store, service, _ = make(gw)
    # unbound meter + forged signature → meter_not_bound (meter check first)
    ack = await service.handle_readings(gw.device_id, encode_batch([forge(gw.read(OTHER_METER))]))
    assert ack.rejected == ((1, Reason.METER_NOT_BOUND),)
    # forged signature + clock ahead + decreasing register → bad_signature
    gw2 = Gateway()
    _, service2, _ = make(gw2)
    rec = gw2.read(METER, timestamp_ms=T0_MS + 3_600_000, prev_hash=b"\x01" * 32, seq=2)
    ack = await service2.handle_readings(gw2.device_id, encode_batch([forge(rec)]))
    assert ack.rejected == ((2, Reason.BAD_SIGNATURE),)
    # chain mismatch + clock ahead → chain_mismatch; then clock ahead + decrease → bad_timestamp
    gw3 = Gateway()
    store3, service3, _ = make(gw3)
    await service3.handle_readings(gw3.device_id, encode_batch([gw3.read(METER, import_wh=100)]))
    ack = await service3.handle_readings(
        gw3.device_id, encode_batch([gw3.read(METER, timestamp_ms=T0_MS + 3_600_000, prev_hash=b"\x02" * 32)])
    )
    assert ack.rejected == ((2, Reason.CHAIN_MISMATCH),)
    gw3.seq, gw3.prev_hash = 1, store3.heads[gw3.device_id].last_hash
    ack = await service3.handle_readings(
        gw3.device_id, encode_batch([gw3.read(METER, timestamp_ms=T0_MS + 3_600_000, import_wh=1)])
    )
    assert ack.rejected == ((2, Reason.BAD_TIMESTAMP),)


@pytest.mark.parametrize(
    "payload",
    [b"", b"garbage", b"GTXB\x01\x00\x00", b"GTXB\x01\x01\x00\x05\x00abcde", bytes(2000), b"{\"v\":1}"],
)
async def test_unframeable_payload_is_answered_malformed(payload: bytes) -> None:
    gw = Gateway()
    store, service, registry = make(gw)
    ack = await service.handle_readings(gw.device_id, payload)
    assert ack == Ack(first=0, last=0, accepted=0, duplicate=0, rejected=((0, Reason.MALFORMED),))
    assert store.readings == {}
    assert registry.get_sample_value("gtx_ingest_records_total", {"outcome": "malformed"}) == 1


async def test_bad_records_do_not_stop_good_ones() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    r1, r2, r3 = gw.many(METER, 3)
    broken = bytearray(r2.encode())
    broken[0:4] = b"XXXX"
    bad_flags = bytearray(r3.encode())
    ack = await service.handle_readings(gw.device_id, encode_batch([r1, bytes(broken), r3]))
    assert ack == Ack(first=1, last=3, accepted=2, duplicate=0, rejected=((2, Reason.MALFORMED),))
    assert seqs(store) == [1, 3]
    flags_at = 74 + len(METER)
    bad_flags[flags_at] = 0x80
    ack = await service.handle_readings(gw.device_id, encode_batch([bytes(bad_flags)]))
    assert ack.rejected == ((3, Reason.BAD_FLAGS),)


async def test_non_increasing_seq_in_a_batch_is_malformed() -> None:
    gw = Gateway()
    _store, service, _ = make(gw)
    r1, r2 = gw.many(METER, 2)
    ack = await service.handle_readings(gw.device_id, encode_batch([r2, r1]))
    assert ack.rejected == ((1, Reason.MALFORMED),)
    assert ack.accepted == 1


async def test_gaps_are_recorded_and_filled() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    recs = gw.many(METER, 10)
    await service.handle_readings(gw.device_id, encode_batch([recs[0], recs[4], recs[9]]))
    assert store.gaps[gw.device_id] == {Gap(2, 4), Gap(6, 9)}
    await service.handle_readings(gw.device_id, encode_batch([recs[2], recs[6]]))
    assert store.gaps[gw.device_id] == {Gap(2, 2), Gap(4, 4), Gap(6, 6), Gap(8, 9)}
    await service.handle_readings(gw.device_id, encode_batch([recs[1], recs[3], recs[5], recs[7], recs[8]]))
    assert store.gaps[gw.device_id] == set()
    assert store.heads[gw.device_id].last_seq == 10


async def test_sync_reply() -> None:
    gw, stranger = Gateway(), Gateway()
    _store, service, _ = make(gw)
    nonce = b"\x07" * 32
    empty = await service.handle_sync(gw.device_id, SyncRequest(nonce).to_json())
    assert empty is not None
    assert (empty.nonce, empty.last_seq, empty.last_hash) == (nonce, 0, ZERO_HASH)
    recs = gw.many(METER, 3)
    await service.handle_readings(gw.device_id, encode_batch(recs))
    reply = await service.handle_sync(gw.device_id, SyncRequest(nonce).to_json())
    assert reply is not None
    assert (reply.last_seq, reply.last_hash) == (3, recs[-1].hash())
    assert await service.handle_sync(stranger.device_id, SyncRequest(nonce).to_json()) is None
    assert await service.handle_sync(gw.device_id, b"{nope") is None


async def test_status_tracks_online() -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    assert await service.handle_status(gw.device_id, b'{"v":1,"online":true,"version":"0.1"}') is True
    assert store.devices[gw.device_id].online
    assert await service.handle_status(gw.device_id, b'{"v":1,"online":false}') is False
    assert not store.devices[gw.device_id].online
    assert await service.handle_status(gw.device_id, b"\xff\xfe") is None


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 30))
async def test_any_delivery_order_with_redelivery_stores_the_chain_exactly_once(data: st.DataObject, n: int) -> None:
    gw = Gateway()
    store, service, _ = make(gw)
    recs = gw.many(METER, n)
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=n)) if n > 1 else set())
    batches = [recs[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    deliveries = batches + data.draw(st.lists(st.sampled_from(batches), max_size=4))
    order = data.draw(st.permutations(deliveries))
    for batch in order:
        ack = await service.handle_readings(gw.device_id, encode_batch(batch))
        assert ack.rejected == ()
    assert seqs(store) == list(range(1, n + 1))
    assert store.gaps.get(gw.device_id, set()) == set()
    assert store.heads[gw.device_id].last_seq == n


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 20))
async def test_every_record_is_accounted_for_once_in_its_ack(data: st.DataObject, n: int) -> None:
    """Whatever mix of good, forged, future and replayed records arrives, each record of a batch is counted exactly
    once (accepted, duplicate or rejected) and exactly the accepted ones are stored. A batch stops at its first
    forged record: the good records after it are rejected too (issue 10, D5)."""
    gw = Gateway()
    store, service, _ = make(gw)
    recs = gw.many(METER, n)
    accepted: set[int] = set()
    for _ in range(data.draw(st.integers(1, 4))):
        picks = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
        raws: list[bytes] = []
        good: set[int] = set()
        forged_seen = False
        for i in picks:
            kind = data.draw(st.sampled_from(["good", "good", "forged", "garbage"]))
            raw = recs[i].encode() if kind == "good" else forge(recs[i]) if kind == "forged" else b"\x00" * 190
            raws.append(raw)
            forged_seen = forged_seen or kind == "forged"
            if kind == "good" and not forged_seen:
                good.add(i + 1)
        ack = await service.handle_readings(gw.device_id, encode_batch(raws))
        assert ack.accepted + ack.duplicate + len(ack.rejected) == len(raws)
        assert ack.accepted == len(good - accepted)
        assert ack.duplicate == len(good & accepted)
        accepted |= good
    assert set(seqs(store)) == accepted
    for (_dev, seq), row in store.readings.items():
        assert row.raw == recs[seq - 1].encode()
