"""The whole trust path through real services: an installer registers a gateway, the gateway proves its key over
MQTT (challenge), the owner claims the meter with the utility's meter key, then protocol-signed readings published
through Mosquitto are verified, stored and readable by the owner; and every kind of bad record sent through the
broker is rejected with its reason and stores nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from central.app import POOL
from central.config import CentralConfig
from central.http import Role
from protocol import topics
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.challenge import ChallengeReply, sign_challenge
from protocol.errors import Reason
from tests.central.app_env import login
from tests.central.device import DeviceClient, central_ack, central_challenge, registration
from tests.central.gateway import Gateway, forge

SERIAL = "FLOW-METER-1"
METER_KEY = "utility-key-" + "7" * 12


async def test_provisioned_gateway_and_claimed_meter_end_to_end(
    central: TestClient[Any, Any], config: CentralConfig, broker: Any
) -> None:
    installer = await login(central, config, "installer@example.test", Role.INSTALLER)
    owner = await login(central, config, "owner@example.test", Role.PROSUMER)
    gw = Gateway(now_ms=central_now())  # the device registers now: its readings must not predate that
    dev = DeviceClient(broker.host, broker.port, [topics.challenge(gw.device_id), topics.ack(gw.device_id)])
    try:
        # Before provisioning, central does not know the gateway.
        dev.publish(topics.readings(gw.device_id), encode_batch([gw.read(SERIAL)]))
        assert central_ack(await dev.next(topics.ack(gw.device_id))).rejected == ((1, Reason.UNKNOWN_DEVICE),)
        gw.seq, gw.prev_hash = 0, bytes(32)

        resp = await central.post("/api/v1/devices", headers=installer, json={
            **registration(gw), "site_label": "roof", "meters": [
                {"serial": SERIAL, "model": "SDM630", "protocol": "modbus-tcp", "meter_key": METER_KEY,
                 "source": "solar"}]})
        assert resp.status == 201, await resp.text()
        # Registered but not yet proven: readings are refused.
        dev.publish(topics.readings(gw.device_id), encode_batch([gw.read(SERIAL)]))
        assert central_ack(await dev.next(topics.ack(gw.device_id))).rejected == ((1, Reason.DEVICE_NOT_VERIFIED),)
        gw.seq, gw.prev_hash = 0, bytes(32)

        # The gateway answers the challenge central sent over MQTT.
        challenge = central_challenge(await dev.next(topics.challenge(gw.device_id)), gw.key.seed)
        signature = sign_challenge(gw.key, challenge.nonce, challenge.expires_ms)
        dev.publish(topics.challenge_reply(gw.device_id), ChallengeReply(challenge.nonce, signature).to_json())
        for _ in range(100):
            got = await (await central.get(f"/api/v1/devices/{gw.device_id}", headers=installer)).json()
            if got["status"] == "verified":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"device never verified: {got}")

        resp = await central.post("/api/v1/meters/claim", headers=owner, json={"serial": SERIAL,
                                                                             "meter_key": METER_KEY})
        assert resp.status == 200, await resp.text()
        meter_id = (await resp.json())["id"]

        recs = gw.many(SERIAL, 4)
        dev.publish(topics.readings(gw.device_id), encode_batch(recs))
        assert central_ack(await dev.next(topics.ack(gw.device_id))) == Ack(1, 4, 4, 0, ())
        resp = await central.get(f"/api/v1/meters/{meter_id}/readings", headers=owner,
                                 params={"from_ms": str(recs[0].timestamp_ms), "to_ms": str(recs[-1].timestamp_ms + 1)})
        assert [r["seq"] for r in (await resp.json())["readings"]] == [1, 2, 3, 4]

        # Every kind of bad record through the broker: the right reason, nothing stored.
        pool = central.app[POOL]
        before = await pool.fetchval("SELECT count(*) FROM readings")
        head = recs[-1]

        def rewind() -> None:
            gw.seq, gw.prev_hash = head.seq, head.hash()

        cases = [
            ("forged signature", lambda: forge(gw.read(SERIAL)), Reason.BAD_SIGNATURE),
            ("someone else's meter", lambda: gw.read("NOT-MY-METER"), Reason.METER_NOT_BOUND),
            ("chain break", lambda: gw.read(SERIAL, prev_hash=b"\x13" * 32), Reason.CHAIN_MISMATCH),
            ("clock 10 minutes ahead", lambda: gw.read(SERIAL, timestamp_ms=central_now() + 600_000),
             Reason.BAD_TIMESTAMP),
            ("register decrease", lambda: gw.read(SERIAL, import_wh=head.import_wh - 1), Reason.REGISTER_DECREASE),
        ]
        for label, make, reason in cases:
            rewind()
            dev.publish(topics.readings(gw.device_id), encode_batch([make()]))
            ack = central_ack(await dev.next(topics.ack(gw.device_id)))
            assert ack.rejected == ((5, reason),), label
        dev.publish(topics.readings(gw.device_id), encode_batch([recs[1]]))  # replayed record
        assert central_ack(await dev.next(topics.ack(gw.device_id))) == Ack(2, 2, 0, 1, ())
        assert await pool.fetchval("SELECT count(*) FROM readings") == before

        # An admin suspends the gateway: its readings are refused as device_not_verified.
        admin = await login(central, config, "admin@example.test", Role.ADMIN)
        resp = await central.post(f"/api/v1/devices/{gw.device_id}/suspend", headers=admin, json={"reason": "test"})
        assert resp.status == 200, await resp.text()
        rewind()
        dev.publish(topics.readings(gw.device_id), encode_batch([gw.read(SERIAL)]))
        assert central_ack(await dev.next(topics.ack(gw.device_id))).rejected == ((5, Reason.DEVICE_NOT_VERIFIED),)
        assert await pool.fetchval("SELECT count(*) FROM readings") == before
    finally:
        dev.close()


def central_now() -> int:
    return time.time_ns() // 1_000_000
