"""Issue 10 D2/D10 on central's side (real PostgreSQL and Mosquitto): pairing codes at registration, challenges signed
by central with the pairing MAC, wrong answers that do not spend the nonce, one challenge per cool-down."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from central.cli import main
from central.errors import ConfigError
from central.http.context import CONFIG, MQTT
from central.signing import load_signing_key
from protocol import topics
from protocol.challenge import ChallengeReply, sign_challenge
from protocol.errors import BadSignatureError
from protocol.keys import DeviceKey, public_key_from_device_id
from protocol.signed import pairing_code, unseal_challenge
from protocol.status import DeviceStatus
from tests.central.device import DeviceClient, central_challenge, registration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _status(api, token: str, device_id: str, want: str, seconds: float = 10.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        body = await (await api.client.get(f"/api/v1/devices/{device_id}", headers=bearer(token))).json()
        if body.get("status") == want or time.monotonic() > deadline:
            return str(body.get("status"))
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("code", [None, "", "ABC", "ABCD-EFGU", "12345678901"])
async def test_registration_needs_a_well_formed_pairing_code(api_factory, code: str | None) -> None:
    api = await api_factory()
    installer = await api.token("installer")
    key = DeviceKey.generate()
    body: dict[str, object] = {"device_id": key.device_id, "meters": []}
    if code is not None:
        body["pairing_code"] = code
    r = await api.client.post("/api/v1/devices", headers=bearer(installer), json=body)
    assert r.status == 400, await r.text()
    assert (await api.client.get(f"/api/v1/devices/{key.device_id}", headers=bearer(installer))).status == 404


async def test_http_challenge_is_signed_by_central_with_the_pairing_mac(api_factory) -> None:
    api = await api_factory()
    installer = await api.token("installer")
    key = DeviceKey.generate()
    code = pairing_code(key.seed)
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={"device_id": key.device_id, "pairing_code": f"{code[:4].lower()}-{code[4:]}"})
    assert r.status == 201, await r.text()
    assert "pairing_code" not in await r.text(), "the code is never echoed"
    r = await api.client.get(f"/api/v1/devices/{key.device_id}/challenge", headers=bearer(installer))
    raw = await r.read()
    challenge = central_challenge(raw, key.seed)
    assert challenge.nonce.hex() == json.loads(json.loads(raw)["body"])["nonce"]
    assert not challenge.matches(pairing_code(bytes(32)), key.public_key)
    with pytest.raises(BadSignatureError):
        unseal_challenge(raw, DeviceKey.generate().public_key, key.device_id)


async def test_gateway_ignores_challenges_of_a_registration_with_the_wrong_code(api_factory, broker,
                                                                                gateway_factory) -> None:
    api = await api_factory(broker)
    await api.app[MQTT].wait_connected(5)
    installer = await api.token("installer")
    device = gateway_factory()
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={"device_id": device.device_id, "pairing_code": pairing_code(bytes(32))})
    assert r.status == 201
    for _ in range(200):
        if device.ignored:
            break
        await asyncio.sleep(0.05)
    assert device.ignored >= 1
    assert device.answered == []
    assert await _status(api, installer, device.device_id, "verified", 0.5) == "pending"


async def test_wrong_mqtt_answers_do_not_spend_the_nonce(api_factory, broker) -> None:
    api = await api_factory(broker)
    await api.app[MQTT].wait_connected(5)
    installer = await api.token("installer")
    key = DeviceKey.generate()
    dev = DeviceClient(broker.host, broker.port, [topics.challenge(key.device_id)])
    try:
        r = await api.client.post("/api/v1/devices", headers=bearer(installer), json={**registration(key)})
        assert r.status == 201
        challenge = central_challenge(await dev.next(topics.challenge(key.device_id)), key.seed)
        # An attacker on the broker answers first, with garbage and with another key's signature.
        for sig in (bytes(64), sign_challenge(DeviceKey.generate(), challenge.nonce, challenge.expires_ms)):
            dev.publish(topics.challenge_reply(key.device_id), ChallengeReply(challenge.nonce, sig).to_json())
        await asyncio.sleep(0.5)
        assert await _status(api, installer, key.device_id, "verified", 0) == "pending"
        good = sign_challenge(key, challenge.nonce, challenge.expires_ms)
        dev.publish(topics.challenge_reply(key.device_id), ChallengeReply(challenge.nonce, good).to_json())
        assert await _status(api, installer, key.device_id, "verified") == "verified"
    finally:
        dev.close()


async def test_online_flood_creates_at_most_one_challenge_per_cooldown(api_factory, broker) -> None:
    api = await api_factory(broker, identity={"challenge_cooldown_s": 3600})
    await api.app[MQTT].wait_connected(5)
    installer = await api.token("installer")
    key = DeviceKey.generate()
    dev = DeviceClient(broker.host, broker.port, [topics.challenge(key.device_id)])
    try:
        r = await api.client.post("/api/v1/devices", headers=bearer(installer), json={**registration(key)})
        assert r.status == 201
        first = central_challenge(await dev.next(topics.challenge(key.device_id)), key.seed)
        for _ in range(300):  # spoofed `online` statuses of the pending device
            dev.client.publish(topics.status(key.device_id), DeviceStatus(online=True).to_json(), qos=1)
        dev.publish(topics.status(key.device_id), DeviceStatus(online=True).to_json())
        await asyncio.sleep(2.0)  # let central work through the flood
        published = []
        while not dev.inbox[topics.challenge(key.device_id)].empty():
            published.append(central_challenge(dev.inbox[topics.challenge(key.device_id)].get(), key.seed))
        assert len(published) <= 1, "one re-publication per cool-down"
        assert all(c.nonce == first.nonce for c in published), "the outstanding challenge, not a new one"
        conn = await asyncpg.connect(api.app[CONFIG].database.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM device_challenges WHERE device_id = $1",
                                       key.device_id) == 1
        finally:
            await conn.close()
    finally:
        dev.close()


async def test_a_pending_gateway_back_after_a_dropped_session_is_challenged_at_once(api_factory, broker) -> None:
    """Issue 12: the session the challenge went to drops (the broker publishes the gateway's will), the gateway
    reconnects and says it is online: central re-publishes the challenge at once, not a cool-down later."""
    api = await api_factory(broker, identity={"challenge_cooldown_s": 3600})
    await api.app[MQTT].wait_connected(5)
    installer = await api.token("installer")
    key = DeviceKey.generate()
    topic = topics.challenge(key.device_id)
    dev = DeviceClient(broker.host, broker.port, [topic])
    try:
        r = await api.client.post("/api/v1/devices", headers=bearer(installer), json=registration(key))
        assert r.status == 201
        first = central_challenge(await dev.next(topic), key.seed)
        dev.publish(topics.status(key.device_id), DeviceStatus(online=True).to_json())
        assert central_challenge(await dev.next(topic), key.seed).nonce == first.nonce  # the cool-down starts
        dev.publish(topics.status(key.device_id), DeviceStatus(online=True).to_json())
        await asyncio.sleep(1.0)
        assert dev.inbox[topic].empty(), "within the cool-down"
        dev.publish(topics.status(key.device_id), DeviceStatus(online=False).to_json())  # the will
        dev.publish(topics.status(key.device_id), DeviceStatus(online=True).to_json())  # the next session
        again = central_challenge(await dev.next(topic, 5.0), key.seed)
        assert again.nonce == first.nonce, "the outstanding challenge, not a new one"
        reply = ChallengeReply(again.nonce, sign_challenge(key, again.nonce, again.expires_ms))
        dev.publish(topics.challenge_reply(key.device_id), reply.to_json())
        assert await _status(api, installer, key.device_id, "verified") == "verified"
    finally:
        dev.close()


def test_signing_key_cli_and_file_permissions(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys" / "central-signing.key"
    setting = f'mqtt.signing_key_file="{path}"'
    jwt = f'auth.jwt_secret="{"j" * 40}"'
    assert main(["--set", jwt, "--set", setting, "signing-key", "init"]) == 0
    public = capsys.readouterr().out.strip()
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_signing_key(str(path))
    assert public_key_from_device_id(public) == key.public_key
    assert main(["--set", jwt, "--set", setting, "signing-key", "init"]) == 0, "idempotent: an existing key is kept"
    assert main(["--set", jwt, "--set", setting, "signing-key", "show"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == public
    for mode in (0o644, 0o640):
        path.chmod(mode)
        with pytest.raises(ConfigError, match="others") as info:
            load_signing_key(str(path))
        assert key.seed.hex() not in str(info.value)
    path.chmod(0o600)
    assert load_signing_key(str(path)).public_key == key.public_key
    path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="hex digits"):
        load_signing_key(str(path))
    with pytest.raises(ConfigError, match="must be set"):
        load_signing_key("")
