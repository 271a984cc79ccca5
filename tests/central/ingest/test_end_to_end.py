"""End to end: protocol-signed readings published through a private Mosquitto into the real central app (ingest +
readings subsystems, PostgreSQL), acks back to the device, the owner's readings API and live WebSocket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from central.app import POOL, TOKENS
from central.http import Role
from central.wiring import ingest as ingest_wiring
from central.wiring import readings as readings_wiring
from protocol import topics
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.errors import ProtocolError, Reason
from protocol.signed import unseal_ack, unseal_sync_reply
from protocol.sync import SyncRequest
from tests.central.app_env import make_config, running_app
from tests.central.device import CENTRAL_KEY, DeviceClient, central_ack
from tests.central.gateway import Gateway, forge
from tests.central.ingest.ingest_db import Seed

METER = "E2E-METER-1"
SUBSYSTEMS = (ingest_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM)


@pytest.fixture
async def central(pg_dsn: str, broker: Any, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(pg_dsn, tmp_path, broker, ingest={"share_group": "central", "concurrency": 2})
    async with running_app(config, SUBSYSTEMS) as client:
        yield client

def pool_of(client: TestClient[Any, Any]) -> asyncpg.Pool:
    return client.app[POOL]


async def test_signed_readings_flow_end_to_end(central: TestClient[Any, Any], broker: Any) -> None:
    seed = Seed(pool_of(central))
    owner, stranger = await seed.user("prosumer"), await seed.user("consumer")
    gw = Gateway(now_ms=time.time_ns() // 1_000_000)  # the real app's clock bounds readings' age
    await seed.device(gw, "verified", METER, owner=owner)
    dev = DeviceClient(broker.host, broker.port, [topics.ack(gw.device_id), topics.sync_reply(gw.device_id)])
    try:
        # Owner opens the live socket first and subscribes to their readings.
        token, _ = central.app[TOKENS].issue(owner, Role.PROSUMER)
        async with central.ws_connect("/api/v1/live") as ws:
            await ws.send_json({"type": "auth", "token": token})
            assert (await ws.receive_json(timeout=5))["type"] == "ready"
            await ws.send_json({"type": "subscribe", "channel": "readings"})
            assert (await ws.receive_json(timeout=5)) == {"type": "subscribed", "channel": "readings"}

            recs = gw.many(METER, 5)
            dev.publish(topics.readings(gw.device_id), encode_batch(recs))
            raw_ack = await dev.next(topics.ack(gw.device_id))
            # Protocol v1.1: sealed by central for this device (issue 10 D2).
            ack = unseal_ack(raw_ack, CENTRAL_KEY.public_key, gw.device_id)
            assert ack == Ack(first=1, last=5, accepted=5, duplicate=0, rejected=())
            with pytest.raises(ProtocolError):
                unseal_ack(raw_ack, CENTRAL_KEY.public_key, Gateway().device_id)
            with pytest.raises(ProtocolError):
                unseal_ack(raw_ack, Gateway().key.public_key, gw.device_id)
            events = [await ws.receive_json(timeout=5) for _ in range(5)]
            assert [e["data"]["seq"] for e in events] == [1, 2, 3, 4, 5]
            assert {e["channel"] for e in events} == {"readings"}
            assert events[0]["data"]["import_wh"] == recs[0].import_wh

        # Redelivery of the same batch: stored once.
        dev.publish(topics.readings(gw.device_id), encode_batch(recs))
        again = central_ack(await dev.next(topics.ack(gw.device_id)))
        assert (again.accepted, again.duplicate) == (0, 5)
        # A forged record is rejected through the same path.
        dev.publish(topics.readings(gw.device_id), encode_batch([forge(gw.read(METER))]))
        assert central_ack(await dev.next(topics.ack(gw.device_id))).rejected == ((6, Reason.BAD_SIGNATURE),)
        assert await seed.stored(gw.device_id) == [1, 2, 3, 4, 5]

        # Chain resync.
        dev.publish(topics.sync(gw.device_id), SyncRequest(b"\x05" * 32).to_json())
        reply = unseal_sync_reply(await dev.next(topics.sync_reply(gw.device_id)), CENTRAL_KEY.public_key,
                                  gw.device_id)
        assert reply.nonce == b"\x05" * 32
        assert (reply.last_seq, reply.last_hash) == (5, recs[-1].hash())

        # Status → online.
        dev.publish(topics.status(gw.device_id), b'{"v":1,"online":true}', retain=True)
        for _ in range(100):
            if await seed.pool.fetchval("SELECT online FROM devices WHERE device_id = $1", gw.device_id):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("device never marked online")

        # The owner's readings API; others see nothing.
        meter_id = seed.meters[METER]
        headers = {"Authorization": f"Bearer {token}"}
        span = {"from_ms": str(recs[0].timestamp_ms), "to_ms": str(recs[-1].timestamp_ms + 1)}
        resp = await central.get(f"/api/v1/meters/{meter_id}/readings", params={**span, "limit": "3"},
                                 headers=headers)
        assert resp.status == 200
        page = await resp.json()
        assert [r["seq"] for r in page["readings"]] == [1, 2, 3]
        assert bytes.fromhex(page["readings"][0]["record"]) == recs[0].encode()
        resp = await central.get(f"/api/v1/meters/{meter_id}/readings",
                                 params={**span, "limit": "3", "cursor": page["next_cursor"]}, headers=headers)
        page2 = await resp.json()
        assert [r["seq"] for r in page2["readings"]] == [4, 5]
        assert page2["next_cursor"] is None
        resp = await central.get(f"/api/v1/meters/{meter_id}/energy", params=span, headers=headers)
        assert resp.status == 200
        energy = await resp.json()
        assert sum(w["import_wh"] for w in energy["windows"]) == recs[-1].import_wh - recs[0].import_wh
        other, _ = central.app[TOKENS].issue(stranger, Role.CONSUMER)
        resp = await central.get(f"/api/v1/meters/{meter_id}/readings", headers={"Authorization": f"Bearer {other}"})
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
        resp = await central.get(f"/api/v1/meters/{meter_id}/readings")
        assert resp.status == 401
    finally:
        dev.close()


async def test_malformed_payloads_do_not_crash_ingest(central: TestClient[Any, Any], broker: Any) -> None:
    seed = Seed(pool_of(central))
    gw = Gateway(now_ms=time.time_ns() // 1_000_000)  # the real app's clock bounds readings' age
    await seed.device(gw, "verified", METER)
    dev = DeviceClient(broker.host, broker.port, [topics.ack(gw.device_id)])
    try:
        for payload in (b"", b"\x00" * 3, b"GTXB\x01\xff\xff", b"not a batch at all", bytes(range(256)) * 8):
            dev.publish(topics.readings(gw.device_id), payload)
            ack = central_ack(await dev.next(topics.ack(gw.device_id)))
            assert ack.rejected == ((0, Reason.MALFORMED),)
        # Topics whose device id is not even valid: dropped without an answer.
        dev.publish("gtx/v1/d/not-base58-0OIl/readings", encode_batch([gw.read(METER)]))
        dev.publish("gtx/v1/d/abc/readings", b"junk")
        dev.publish("gtx/v1/d/abc/sync", b"junk")
        dev.publish(topics.sync(gw.device_id), b"{junk")
        dev.publish(topics.status(gw.device_id), b"\xff")
        # ... and the next good batch is still processed.
        gw.seq, gw.prev_hash = 0, bytes(32)
        dev.publish(topics.readings(gw.device_id), encode_batch(gw.many(METER, 2)))
        ack = central_ack(await dev.next(topics.ack(gw.device_id)))
        assert (ack.accepted, ack.rejected) == (2, ())
        assert await seed.stored(gw.device_id) == [1, 2]
        unknown = Gateway(now_ms=time.time_ns() // 1_000_000)
        dev2 = DeviceClient(broker.host, broker.port, [topics.ack(unknown.device_id)])
        try:
            dev2.publish(topics.readings(unknown.device_id), encode_batch([unknown.read(METER)]))
            ack = central_ack(await dev2.next(topics.ack(unknown.device_id)))
            assert ack.rejected == ((1, Reason.UNKNOWN_DEVICE),)
        finally:
            dev2.close()
    finally:
        dev.close()
    body = await (await central.get("/metrics")).text()
    assert 'gtx_ingest_records_total{outcome="malformed"}' in body
    assert "gtx_ingest_batch_seconds_bucket" in body
