"""Gateways: registration by installers, the challenge over MQTT (answered by a protocol-library device through a
real Mosquitto) and over HTTP, single use and expiry of nonces, admin status changes."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from central.app import MQTT
from central.http.context import CONFIG, SERVICES
from protocol.challenge import sign_challenge
from protocol.keys import DeviceKey
from tests.central.device import central_challenge, registration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _meter(serial: str, key: str = "utility-key-0001", source: str | None = "solar") -> dict:
    return {"serial": serial, "model": "SDM630", "protocol": "modbus-tcp", "source": source, "meter_key": key}


async def _wait_status(api, token: str, device_id: str, status: str, seconds: float = 10.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        body = await (await api.client.get(f"/api/v1/devices/{device_id}", headers=bearer(token))).json()
        if body.get("status") == status or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_device_verified_by_mqtt_challenge(api_factory, broker, gateway_factory) -> None:
    api = await api_factory(broker)
    await api.app[MQTT].wait_connected(5)
    installer = await api.token("installer")
    device = gateway_factory()
    r = await api.client.post("/api/v1/devices", headers=bearer(installer), json={
        **registration(device), "site_label": "Roof A",
        "meters": [_meter("M-1"), _meter("M-2", source=None)]})
    assert r.status == 201, await r.text()
    body = await r.json()
    assert body["status"] == "pending"
    assert [m["serial"] for m in body["meters"]] == ["M-1", "M-2"]
    assert "meter_key" not in str(body)
    body = await _wait_status(api, installer, device.device_id, "verified")
    assert body["status"] == "verified"
    assert body["verified_at"] is not None
    assert len(device.answered) == 1

    conn = await asyncpg.connect(api.app[CONFIG].database.dsn)
    try:
        hashes = [r["meter_key_hash"] for r in await conn.fetch("SELECT meter_key_hash FROM meters")]
        assert all(h.startswith("$2b$12$") for h in hashes), "meter keys are bcrypt, cost 12"
        used = await conn.fetchval("SELECT count(*) FROM device_challenges WHERE used_at IS NOT NULL")
        assert used == 1
    finally:
        await conn.close()

    r = await api.client.post("/api/v1/devices", headers=bearer(installer), json={
        **registration(device), "meters": []})
    assert r.status == 409
    other = await api.token("installer")
    r = await api.client.get(f"/api/v1/devices/{device.device_id}", headers=bearer(other))
    assert r.status == 404, "installers only see their own gateways"


async def test_device_that_comes_online_later_is_challenged(api_factory, broker, gateway_factory) -> None:
    api = await api_factory(broker)
    await api.app[MQTT].wait_connected(5)
    installer = await api.token("installer")
    key = DeviceKey.generate()
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={**registration(key), "meters": [_meter("LATE-1")]})
    assert r.status == 201
    await asyncio.sleep(0.2)  # the registration challenge goes nowhere: the gateway is not connected yet
    device = gateway_factory(key)
    device.announce_online()
    body = await _wait_status(api, installer, key.device_id, "verified")
    assert body["status"] == "verified"


async def test_http_challenge_single_use_expiry_and_bad_signature(api_factory) -> None:
    api = await api_factory()
    installer = await api.token("installer")
    key = DeviceKey.generate()
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={**registration(key), "meters": []})
    assert r.status == 201
    url = f"/api/v1/devices/{key.device_id}"

    async def fetch() -> tuple[bytes, int]:
        r = await api.client.get(url + "/challenge", headers=bearer(installer))
        assert r.status == 200
        ch = central_challenge(await r.read(), key.seed)  # signed by central, with the pairing MAC
        return ch.nonce, ch.expires_ms

    async def answer(nonce: bytes, sig: bytes) -> tuple[int, dict]:
        r = await api.client.post(url + "/challenge-response", headers=bearer(installer),
                                  json={"nonce": nonce.hex(), "signature": sig.hex()})
        return r.status, await r.json()

    # Wrong key (or garbage from anyone): refused, and the nonce is NOT spent (issue 10 D2) -- used further below.
    first, first_exp = await fetch()
    for _ in range(3):
        status, body = await answer(first, sign_challenge(DeviceKey.generate(), first, first_exp))
        assert (status, body["error"]["code"]) == (400, "bad_signature")

    # Expired: refused even with the right signature.
    nonce, exp = await fetch()
    conn = await asyncpg.connect(api.app[CONFIG].database.dsn)
    try:
        await conn.execute("UPDATE device_challenges SET expires_ms = $2 WHERE nonce = $1", nonce,
                           int(time.time() * 1000) - 1)
        status, body = await answer(nonce, sign_challenge(key, nonce, exp))
        assert (status, body["error"]["code"]) == (400, "invalid_challenge")
        assert (await _wait_status(api, installer, key.device_id, "x", 0))["status"] == "pending"

        # The genuine answer to the nonce that got wrong answers before still verifies the device.
        nonce, exp = first, first_exp
        status, body = await answer(nonce, sign_challenge(key, nonce, exp))
        assert status == 200
        assert body["status"] == "verified"
        status, body = await answer(nonce, sign_challenge(key, nonce, exp))
        assert status == 400, "single use"

        # The sweeper removes expired challenges.
        assert await api.app[SERVICES].identity.devices.sweep_challenges() >= 1
        await conn.execute("UPDATE device_challenges SET expires_ms = 0")
        assert await api.app[SERVICES].identity.devices.sweep_challenges() >= 1
        assert await conn.fetchval("SELECT count(*) FROM device_challenges") == 0
    finally:
        await conn.close()


async def test_admin_suspend_reinstate_revoke(api_factory) -> None:
    api = await api_factory()
    installer, admin = await api.token("installer"), await api.token("admin")
    key = DeviceKey.generate()
    await api.client.post("/api/v1/devices", headers=bearer(installer), json={**registration(key)})
    raw = await (await api.client.get(f"/api/v1/devices/{key.device_id}/challenge", headers=bearer(installer))).read()
    ch = central_challenge(raw, key.seed)
    nonce = ch.nonce
    sig = sign_challenge(key, nonce, ch.expires_ms)
    r = await api.client.post(f"/api/v1/devices/{key.device_id}/challenge-response", headers=bearer(installer),
                              json={"nonce": nonce.hex(), "signature": sig.hex()})
    assert (await r.json())["status"] == "verified"

    async def act(action: str) -> tuple[int, dict]:
        r = await api.client.post(f"/api/v1/devices/{key.device_id}/{action}", headers=bearer(admin),
                                  json={"reason": "test"})
        return r.status, await r.json()

    assert (await act("suspend"))[1]["status"] == "suspended"
    assert (await act("reinstate"))[1]["status"] == "verified"
    r = await api.client.post(f"/api/v1/devices/{key.device_id}/suspend", headers=bearer(installer), json={})
    assert r.status == 403
    assert (await act("revoke"))[1]["status"] == "revoked"
    status, body = await act("reinstate")
    assert (status, body["error"]["code"]) == (409, "device_revoked")
    r = await api.client.get(f"/api/v1/devices/{key.device_id}/challenge", headers=bearer(installer))
    assert r.status == 409
    r = await api.client.get("/api/v1/devices", headers=bearer(admin))
    assert [d["device_id"] for d in await r.json()] == [key.device_id]


async def test_register_rejects_bad_input(api_factory) -> None:
    api = await api_factory()
    installer = await api.token("installer")
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={"device_id": "0" * 40, "pairing_code": "2E7GBNFZ", "meters": []})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "invalid_device_id"
    key = DeviceKey.generate()
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={**registration(key), "meters": [_meter("A B")]})
    assert r.status == 400, "serials follow the protocol's character set"
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={**registration(key), "meters": [_meter("D1"), _meter("D1")]})
    assert r.status == 400
    assert (await api.client.get(f"/api/v1/devices/{key.device_id}", headers=bearer(installer))).status == 404


async def test_sweeper_task_removes_expired_challenges(api_factory) -> None:
    api = await api_factory(identity={"challenge_sweep_interval_s": 0.1})
    installer = await api.token("installer")
    key = DeviceKey.generate()
    await api.client.post("/api/v1/devices", headers=bearer(installer), json={**registration(key)})
    for _ in range(3):
        assert (await api.client.get(f"/api/v1/devices/{key.device_id}/challenge", headers=bearer(installer))).ok
    conn = await asyncpg.connect(api.app[CONFIG].database.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM device_challenges") == 3
        await conn.execute("UPDATE device_challenges SET expires_ms = 0 WHERE nonce IN"
                           " (SELECT nonce FROM device_challenges LIMIT 2)")
        for _ in range(100):
            if await conn.fetchval("SELECT count(*) FROM device_challenges") == 1:
                break
            await asyncio.sleep(0.05)
        assert await conn.fetchval("SELECT count(*) FROM device_challenges") == 1, "live challenges are kept"
    finally:
        await conn.close()


async def test_garbage_on_challenge_topics_is_dropped_and_service_continues(api_factory, broker,
                                                                             gateway_factory) -> None:
    api = await api_factory(broker)
    mqtt = api.app[MQTT]
    await mqtt.wait_connected(5)
    installer = await api.token("installer")
    device = gateway_factory()
    other = DeviceKey.generate().device_id
    for topic, payload in [
        (f"gtx/v1/d/{device.device_id}/challenge/reply", b"\xff\x00not json"),
        (f"gtx/v1/d/{device.device_id}/challenge/reply", b'{"v":1,"nonce":"00","signature":"11"}'),
        (f"gtx/v1/d/{other}/challenge/reply", b'{"v":1,"nonce":"' + b"0" * 64 + b'","signature":"' + b"1" * 128
         + b'"}'),
        ("gtx/v1/d/not-base58!/challenge/reply", b"{}"),
        (f"gtx/v1/d/{device.device_id}/status", b"[1,2"),
    ]:
        await mqtt.publish_confirmed(topic, payload)
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={**registration(device), "meters": [_meter("G-1")]})
    assert r.status == 201
    body = await _wait_status(api, installer, device.device_id, "verified")
    assert body["status"] == "verified"
