"""Idempotency keys (issue 10 D18): a client that retries an order placement after a lost response gets the first
answer again, not a second order; the same key with another body is refused; a key in use by a running request is a
conflict; failures are not stored; the header is declared in the OpenAPI document."""

from __future__ import annotations

import json
import uuid

import pytest

from central.app import POOL
from central.http.idempotency import IDEMPOTENCY, Stored, fingerprint
from tests.central.market.http_env import Env, auth, deposit, funded_user

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ORDER = {"side": "buy", "qty": 100, "price": 3, "tif": "gtc"}


async def _buyer(env: Env) -> tuple[uuid.UUID, dict[str, str]]:
    client, setup, ledger = env
    uid, wallet = await funded_user(client, setup, ledger, "consumer", quote=10_000)
    h = auth(client, uid)
    await deposit(client, h, wallet, "quote", 10_000)
    return uid, h


async def _orders(env: Env, uid: uuid.UUID) -> int:
    pool = env[0].app[POOL]
    sql = "SELECT count(*) FROM orders JOIN market_accounts USING (account) WHERE user_id = $1"
    return int(await pool.fetchval(sql, uid))


async def test_retried_order_placement_with_the_same_key_creates_one_order(env: Env) -> None:
    client = env[0]
    uid, h = await _buyer(env)
    key = {**h, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/api/v1/market/orders", json=ORDER, headers=key)
    assert first.status == 201, await first.text()
    retry = await client.post("/api/v1/market/orders", json=ORDER, headers=key)
    assert retry.status == 201, await retry.text()
    assert await retry.json() == await first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert await _orders(env, uid) == 1

    # The same key with another body: refused, nothing placed.
    other = await client.post("/api/v1/market/orders", json={**ORDER, "qty": 101}, headers=key)
    assert other.status == 422
    assert (await other.json())["error"]["code"] == "idempotency_key_reused"
    assert await _orders(env, uid) == 1

    # Another user's identical key is theirs alone.
    uid2, h2 = await _buyer(env)
    h2_key = {**h2, "Idempotency-Key": key["Idempotency-Key"]}
    again = await client.post("/api/v1/market/orders", json=ORDER, headers=h2_key)
    assert again.status == 201
    assert "Idempotent-Replayed" not in again.headers
    assert await _orders(env, uid2) == 1

    # Without a key every request acts (as before).
    for _ in range(2):
        r = await client.post("/api/v1/market/orders", json=ORDER, headers=h)
        assert r.status == 201
    assert await _orders(env, uid) == 3


async def test_cancel_is_replayed_and_client_errors_are_stored(env: Env) -> None:
    client = env[0]
    _uid, h = await _buyer(env)
    placed = await client.post("/api/v1/market/orders", json=ORDER, headers=h)
    oid = (await placed.json())["id"]
    key = {**h, "Idempotency-Key": "cancel-" + uuid.uuid4().hex}
    first = await client.delete(f"/api/v1/market/orders/{oid}", headers=key)
    assert first.status == 200, await first.text()
    retry = await client.delete(f"/api/v1/market/orders/{oid}", headers=key)
    assert retry.status == 200  # without the key the second cancel would be a 409 (no longer open)
    assert await retry.json() == await first.json()
    # A 4xx answer is the request's outcome: stored and replayed too.
    poor = {**h, "Idempotency-Key": uuid.uuid4().hex}
    body = {**ORDER, "qty": 10**9}
    r1 = await client.post("/api/v1/market/orders", json=body, headers=poor)
    r2 = await client.post("/api/v1/market/orders", json=body, headers=poor)
    assert r1.status == r2.status == 422
    assert r2.headers.get("Idempotent-Replayed") == "true"


async def test_key_in_use_is_a_conflict_and_released_keys_run_again(env: Env) -> None:
    client = env[0]
    uid, h = await _buyer(env)
    store = client.app[IDEMPOTENCY]
    path = "/api/v1/market/orders"
    # A first request still running (its row is pending): the retry is told to come back later.
    raw = json.dumps(ORDER).encode()
    begun = await store.begin(uid, "busy", fingerprint("POST", path, raw))
    assert begun.fresh
    r = await client.post(path, data=raw, headers={**h, "Idempotency-Key": "busy", "Content-Type": "application/json"})
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "idempotency_in_progress"
    assert await _orders(env, uid) == 0
    # The first request failed with a 5xx: nothing is stored, the retry runs.
    await store.release(uid, "busy")
    r = await client.post(path, data=raw, headers={**h, "Idempotency-Key": "busy", "Content-Type": "application/json"})
    assert r.status == 201
    assert await _orders(env, uid) == 1
    # finish() only completes a pending key: a stored answer is never overwritten.
    await store.finish(uid, "busy", Stored(500, "text/plain", b"late"))
    r = await client.post(path, data=raw, headers={**h, "Idempotency-Key": "busy", "Content-Type": "application/json"})
    assert r.status == 201
    # A malformed key is a 400.
    r = await client.post(path, json=ORDER, headers={**h, "Idempotency-Key": "x" * 256})
    assert r.status == 400


async def test_openapi_declares_the_header(env: Env) -> None:
    doc = await (await env[0].get("/api/openapi.json")).json()
    op = doc["paths"]["/api/v1/market/orders"]["post"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= next(
        p for p in op["parameters"] if p["name"] == "Idempotency-Key"
    ).items()
    assert {"409", "422"} <= set(op["responses"])
    for path, method in (
        ("/api/v1/market/orders/{order_id}", "delete"),
        ("/api/v1/market/withdrawals", "post"),
        ("/api/v1/wallet/link", "post"),
    ):
        if path in doc["paths"]:
            assert any(p["name"] == "Idempotency-Key" for p in doc["paths"][path][method].get("parameters", []))
