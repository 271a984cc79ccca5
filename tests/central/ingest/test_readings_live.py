"""The live WebSocket hub: in-band authentication, channel errors, per-owner isolation, fan-out via LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from central.readings.live import CLOSE_TOO_MANY, CLOSE_UNAUTHENTICATED, LiveHub, ReadingsChannel
from protocol.batch import encode_batch
from tests.central.gateway import T0_MS, Gateway
from tests.central.ingest.ingest_db import Seed


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    role: str = "prosumer"


@contextlib.asynccontextmanager
async def serving(pool: asyncpg.Pool, hub: LiveHub) -> AsyncIterator[TestClient[Any, Any]]:
    """The hub on a test server at /live, started and stopped with it."""
    await hub.start(pool)
    app = web.Application()
    app.router.add_get("/live", hub.handle)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await hub.stop()
        await client.close()


@pytest.fixture
async def live(pool: asyncpg.Pool) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, Caller]]]:
    users: dict[str, Caller] = {}

    def authenticate(token: str) -> Caller:
        return users[token]

    hub = LiveHub(authenticate, auth_timeout_s=0.5)
    ReadingsChannel.register(hub)
    async with serving(pool, hub) as client:
        yield client, users


async def login(client: TestClient[Any, Any], token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/live")
    await ws.send_json({"type": "auth", "token": token})
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    return ws


async def test_invalid_token_and_silence_are_refused(live: tuple[TestClient[Any, Any], dict[str, Caller]]) -> None:
    client, _ = live
    async with client.ws_connect("/live") as ws:
        await ws.send_json({"type": "auth", "token": "nope"})
        assert (await ws.receive_json(timeout=5))["code"] == "unauthorized"
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == CLOSE_UNAUTHENTICATED
    async with client.ws_connect("/live") as ws:
        msg = await ws.receive(timeout=5)  # says nothing: closed after the auth timeout
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == CLOSE_UNAUTHENTICATED
    async with client.ws_connect("/live") as ws:
        await ws.send_json({"type": "subscribe", "channel": "readings"})  # not an auth message
        assert (await ws.receive_json(timeout=5))["code"] == "unauthorized"


async def test_channel_errors(live: tuple[TestClient[Any, Any], dict[str, Caller]], seed: Seed) -> None:
    client, users = live
    me, other = await seed.user(), await seed.user()
    users["me"] = Caller(me)
    gw = Gateway()
    await seed.device(gw, "verified", "THEIRS", owner=other)
    ws = await login(client, "me")
    try:
        await ws.send_str("not json")
        assert (await ws.receive_json(timeout=5))["code"] == "bad_message"
        await ws.send_str("[" * 30_000 + "]" * 30_000)  # nesting deep enough to exhaust the JSON parser's recursion
        assert (await ws.receive_json(timeout=5))["code"] == "bad_message"
        await ws.send_json({"type": "subscribe", "channel": "orders"})
        assert (await ws.receive_json(timeout=5))["code"] == "unknown_channel"
        await ws.send_json({"type": "subscribe", "channel": "readings", "params": {"meter_id": "x"}})
        assert (await ws.receive_json(timeout=5))["code"] == "bad_params"
        await ws.send_json({"type": "subscribe", "channel": "readings",
                            "params": {"meter_id": str(seed.meters["THEIRS"])}})
        assert (await ws.receive_json(timeout=5))["code"] == "not_found"
        await ws.send_json({"type": "subscribe", "channel": "readings"})
        assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
        await ws.send_json({"type": "unsubscribe", "channel": "readings"})
        assert (await ws.receive_json(timeout=5))["type"] == "unsubscribed"
    finally:
        await ws.close()


async def test_each_owner_sees_only_their_meters(live: tuple[TestClient[Any, Any], dict[str, Caller]],
                                                 seed: Seed) -> None:
    client, users = live
    alice, bob = await seed.user(), await seed.user()
    users["alice"], users["bob"] = Caller(alice), Caller(bob)
    gw = Gateway()
    await seed.device(gw, "verified", "A-1", owner=alice)
    await seed.device(Gateway(), "verified")  # unrelated device
    await seed.pool.execute(
        "INSERT INTO meters (id, serial, device_id, model, protocol, meter_key_hash, owner_id) "
        "VALUES ($1, 'B-1', $2, 'sim', 'modbus', 'x', $3)", uuid.uuid4(), gw.device_id, bob,
    )
    service = IngestService(PgIngestStore(seed.pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                            clock_ms=lambda: T0_MS)
    wa, wb = await login(client, "alice"), await login(client, "bob")
    try:
        for ws in (wa, wb):
            await ws.send_json({"type": "subscribe", "channel": "readings"})
            assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
        ack = await service.handle_readings(gw.device_id, encode_batch([gw.read("A-1"), gw.read("B-1"),
                                                                        gw.read("A-1")]))
        assert ack.accepted == 3
        got_a = [await wa.receive_json(timeout=5) for _ in range(2)]
        got_b = [await wb.receive_json(timeout=5)]
        assert [(e["data"]["meter_serial"], e["data"]["seq"]) for e in got_a] == [("A-1", 1), ("A-1", 3)]
        assert [(e["data"]["meter_serial"], e["data"]["seq"]) for e in got_b] == [("B-1", 2)]
        with pytest.raises(asyncio.TimeoutError):
            await wb.receive_json(timeout=0.3)
    finally:
        await wa.close()
        await wb.close()


async def test_new_owner_is_not_sent_readings_from_before_the_release(
    live: tuple[TestClient[Any, Any], dict[str, Caller]], seed: Seed
) -> None:
    """A reading taken while the previous owner held the meter but stored after the next owner claimed it (a gateway
    sending its backlog late) is the previous owner's history: the HTTP API hides it from the next owner
    (test_readings_privacy.py), and so must the live feed."""
    client, users = live
    first, second = await seed.user(), await seed.user()
    users["second"] = Caller(second)
    gw = Gateway()
    await seed.device(gw, "verified", "M-1", owner=first)
    released_ms = T0_MS + 60_000
    await seed.pool.execute(
        "UPDATE meters SET owner_id = $1, released_at = to_timestamp($2 / 1000.0), claimed_at = to_timestamp($2 /"
        " 1000.0) WHERE serial = 'M-1'", second, released_ms,
    )  # fmt: skip
    service = IngestService(PgIngestStore(seed.pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                            clock_ms=lambda: released_ms + 60_000)
    ws = await login(client, "second")
    try:
        await ws.send_json({"type": "subscribe", "channel": "readings"})
        assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
        before, after = gw.read("M-1", timestamp_ms=T0_MS), gw.read("M-1", timestamp_ms=released_ms + 1000)
        assert (await service.handle_readings(gw.device_id, encode_batch([before, after]))).accepted == 2
        got = await ws.receive_json(timeout=5)
        assert got["data"]["timestamp_ms"] == released_ms + 1000
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_json(timeout=0.3)
    finally:
        await ws.close()


async def test_one_user_cannot_open_sockets_without_end(pool: asyncpg.Pool) -> None:
    """Every socket's subscriptions cost queries on each event; one account could open as many as it liked."""
    alice, bob = Caller(uuid.uuid4()), Caller(uuid.uuid4())
    hub = LiveHub({"alice": alice, "bob": bob}.__getitem__, max_sockets_per_user=2)
    async with serving(pool, hub) as client:
        first, second = await login(client, "alice"), await login(client, "alice")
        async with client.ws_connect("/live") as third:
            await third.send_json({"type": "auth", "token": "alice"})
            assert (await third.receive_json(timeout=5))["code"] == "too_many_sockets"
            assert (await third.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
            assert third.close_code == CLOSE_TOO_MANY
        other = await login(client, "bob")  # the limit is per user
        await first.close()
        again = await login(client, "alice")  # a closed socket frees its place
        for ws in (second, other, again):
            await ws.close()
