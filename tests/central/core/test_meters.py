"""Meter ownership: claim with serial + meter key (400 / 409 / 429 with Retry-After), audit of every attempt,
listing and release."""

from __future__ import annotations

import asyncio

from central.http.context import SERVICES
from protocol.keys import DeviceKey
from tests.central.device import registration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _device_with_meters(api, *serials: str) -> str:
    installer = await api.token("installer")
    key = DeviceKey.generate()
    meters = [{"serial": s, "model": "SDM630", "protocol": "modbus-tcp", "source": "solar",
               "meter_key": f"key-of-{s}"} for s in serials]
    r = await api.client.post("/api/v1/devices", headers=bearer(installer),
                              json={**registration(key), "meters": meters})
    assert r.status == 201, await r.text()
    return key.device_id


async def test_claim_list_release(api_factory) -> None:
    api = await api_factory()
    device_id = await _device_with_meters(api, "S-1", "S-2")
    alice, bob = await api.token("prosumer"), await api.token("consumer")
    hdr = {"User-Agent": "gtx-test/1"}

    r = await api.client.post("/api/v1/meters/claim", headers={**bearer(alice), **hdr},
                              json={"serial": "S-1", "meter_key": "wrong key"})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "invalid_meter_key"
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(alice),
                              json={"serial": "NOPE", "meter_key": "key-of-S-1"})
    assert r.status == 400, "unknown serial looks the same as a wrong key"
    r = await api.client.post("/api/v1/meters/claim", headers={**bearer(alice), **hdr},
                              json={"serial": "S-1", "meter_key": "key-of-S-1"})
    assert r.status == 200
    claimed = await r.json()
    assert claimed["serial"] == "S-1"
    assert claimed["device_id"] == device_id
    assert claimed["device_status"] == "pending"
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(alice),
                              json={"serial": "S-1", "meter_key": "key-of-S-1"})
    assert r.status == 200, "claiming one's own meter again is idempotent"
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(bob),
                              json={"serial": "S-1", "meter_key": "key-of-S-1"})
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "meter_claimed"

    mine = await (await api.client.get("/api/v1/meters", headers=bearer(alice))).json()
    assert [m["serial"] for m in mine] == ["S-1"]
    assert await (await api.client.get("/api/v1/meters", headers=bearer(bob))).json() == []

    r = await api.client.delete("/api/v1/meters/S-1/claim", headers=bearer(bob))
    assert r.status == 404
    r = await api.client.delete("/api/v1/meters/S-1/claim", headers=bearer(alice))
    assert r.status == 204
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(bob),
                              json={"serial": "S-1", "meter_key": "key-of-S-1"})
    assert r.status == 200, "a released meter can be claimed by someone else"

    audit = await api.app[SERVICES].identity.meters.attempts(None, 100)
    outcomes = [(a.serial, a.outcome) for a in reversed(audit)]
    assert outcomes == [("S-1", "wrong_key"), ("NOPE", "wrong_key"), ("S-1", "claimed"), ("S-1", "already_owned"),
                        ("S-1", "claimed_by_other"), ("S-1", "claimed")]
    first = audit[-1]
    assert first.user_agent == "gtx-test/1"
    assert first.address == "127.0.0.1"
    assert first.at is not None


async def test_sixth_attempt_in_an_hour_is_429_with_retry_after(api_factory) -> None:
    api = await api_factory()
    await _device_with_meters(api, "R-1")
    mallory = await api.token("consumer")
    # Fired concurrently: the per-user lock still lets exactly five through to the key check.
    results = await asyncio.gather(*(
        api.client.post("/api/v1/meters/claim", headers=bearer(mallory), json={"serial": "R-1", "meter_key": f"g{i}"})
        for i in range(7)
    ))
    statuses = sorted(r.status for r in results)
    assert statuses == [400] * 5 + [429] * 2
    limited = next(r for r in results if r.status == 429)
    assert 3500 <= int(limited.headers["Retry-After"]) <= 3600
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(mallory),
                              json={"serial": "R-1", "meter_key": "key-of-R-1"})
    assert r.status == 429, "even the right key waits out the hour"
    outcomes = sorted(a.outcome for a in await api.app[SERVICES].identity.meters.attempts(None, 100))
    assert outcomes == ["rate_limited"] * 3 + ["wrong_key"] * 5
    other = await api.token("prosumer")
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(other),
                              json={"serial": "R-1", "meter_key": "key-of-R-1"})
    assert r.status == 200, "the limit is per user"


async def test_wrong_keys_for_one_serial_from_many_accounts_hit_a_per_serial_limit(api_factory) -> None:
    """Issue 10 D16: accounts sharing guesses at one serial are limited per serial, not only per user."""
    api = await api_factory(identity={"claim_failures_per_serial_per_hour": 3})
    await _device_with_meters(api, "S-1", "S-2")
    for i in range(3):
        guesser = await api.token("consumer")
        r = await api.client.post("/api/v1/meters/claim", headers=bearer(guesser),
                                  json={"serial": "S-1", "meter_key": f"g{i}"})
        assert r.status == 400
    fresh = await api.token("consumer")
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(fresh), json={"serial": "S-1", "meter_key": "g9"})
    assert r.status == 429
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    r = await api.client.post("/api/v1/meters/claim", headers=bearer(fresh),
                              json={"serial": "S-2", "meter_key": "key-of-S-2"})
    assert r.status == 200, "other serials are unaffected"
