"""Defects found in review: each test failed before its fix."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.central.core.conftest import Api


async def _chunked(client: TestClient[web.Request, web.Application], path: str, chunks: list[bytes],
                   token: str) -> Any:
    async def gen() -> Any:
        for c in chunks:
            yield c
            await asyncio.sleep(0.05)

    return await client.post(path, data=gen(), headers={"Authorization": f"Bearer {token}",
                                                        "Content-Type": "application/json"})


async def test_body_sent_in_several_chunks_is_read_whole(api_factory) -> None:
    api: Api = await api_factory()
    token = await api.token("admin")
    body = json.dumps({"email": "chunky@example.org", "password": "correct horse battery",
                       "role": "consumer"}).encode()
    r = await _chunked(api.client, "/api/v1/admin/users", [body[:10], body[10:30], body[30:]], token)
    assert r.status == 201, await r.text()
    assert (await r.json())["email"] == "chunky@example.org"


async def test_deeply_nested_json_is_a_400_not_a_500(api_factory) -> None:
    api: Api = await api_factory()
    r = await api.client.post("/api/v1/auth/login", data=b"[" * 200_000 + b"]" * 200_000,
                              headers={"Content-Type": "application/json"})
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "malformed_json"


async def test_concurrent_wrong_logins_cannot_slip_past_the_account_limit(api_factory) -> None:
    """The failure count was read before the attempt was recorded: N parallel guesses all passed the check."""
    api: Api = await api_factory(auth={"login_max_failures_per_account": 3, "login_max_failures_per_address": 1000})
    email, _ = await api.user("consumer")

    async def guess(i: int) -> int:
        r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": f"wrong guess {i}"})
        return r.status

    statuses = await asyncio.gather(*(guess(i) for i in range(20)))
    assert statuses.count(401) <= 3, statuses
    assert set(statuses) <= {401, 429}


async def test_login_limit_is_not_bypassed_by_case_or_whitespace(api_factory) -> None:
    api: Api = await api_factory(auth={"login_max_failures_per_account": 2, "login_max_failures_per_address": 1000})
    email, _ = await api.user("consumer")
    variants = [email, email.upper(), email.title(), email.swapcase()]
    statuses = []
    for v in variants:
        r = await api.client.post("/api/v1/auth/login", json={"email": v, "password": "wrong password!"})
        statuses.append(r.status)
    assert statuses == [401, 401, 429, 429]
