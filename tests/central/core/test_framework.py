"""The framework itself: migrations, app factory, error shape, OpenAPI, health endpoints."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from central.app import create_app
from central.db import MigrationError, apply_migrations, discover_migrations, migrate_dsn
from central.http import PUBLIC, Call, Role, RouteTable, meta, roles
from central.jobs import Job
from central.wiring import Subsystem


async def test_migrations_apply_once_and_record(empty_pg_dsn: str) -> None:
    first = await migrate_dsn(empty_pg_dsn)
    assert first[0] == "0001_identity.sql"
    assert await migrate_dsn(empty_pg_dsn) == []
    conn = await asyncpg.connect(empty_pg_dsn)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == [m.name for m in discover_migrations()]
        cols = {r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'meters'")}
        assert {"id", "serial", "device_id", "model", "protocol", "source", "meter_key_hash", "owner_id",
                "claimed_at", "created_at"} <= cols
    finally:
        await conn.close()


async def test_concurrent_migration_runs_apply_each_file_once(empty_pg_dsn: str) -> None:
    results = await asyncio.gather(*(migrate_dsn(empty_pg_dsn) for _ in range(4)))
    applied = [name for r in results for name in r]
    assert sorted(applied) == sorted(m.name for m in discover_migrations())


async def test_changed_migration_is_refused(empty_pg_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    conn = await asyncpg.connect(empty_pg_dsn)
    try:
        assert await apply_migrations(conn, tmp_path) == ["0001_a.sql"]
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x bigint);")
        with pytest.raises(MigrationError, match="changed"):
            await apply_migrations(conn, tmp_path)
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
        (tmp_path / "0002_bad.sql").write_text("CREATE TABLE nope (;")
        with pytest.raises(MigrationError, match=r"0002_bad\.sql failed"):
            await apply_migrations(conn, tmp_path)
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 1
    finally:
        await conn.close()


@dataclass(frozen=True)
class Echo:
    name: str = field(metadata=meta(min_length=1, max_length=5))
    count: int = field(default=1, metadata=meta(minimum=1))


async def test_app_serves_health_openapi_and_one_error_shape(config_factory, broker, client_factory) -> None:
    table = RouteTable(tag="test")

    @table.post("/api/v1/echo", access=PUBLIC, body=Echo, response=Echo, summary="echo")
    async def echo(call: Call[Echo, None]) -> Echo:
        return call.body

    @table.get("/api/v1/admin-only", access=roles(Role.ADMIN), response=Echo, summary="admin")
    async def admin_only(_call: Call[None, None]) -> Echo:
        return Echo("x")

    @table.get("/api/v1/boom", access=PUBLIC, summary="boom")
    async def boom(_call: Call[None, None]) -> None:
        raise RuntimeError("secret internal detail")

    app = create_app(config_factory(broker, http={"max_body_bytes": 4096}), subsystems=(Subsystem("t", (table,)),))
    client = await client_factory(app)
    assert (await client.get("/healthz")).status == 200
    for _ in range(50):
        r = await client.get("/readyz")
        if r.status == 200:
            break
        await asyncio.sleep(0.1)
    body = await r.json()
    assert r.status == 200, body
    assert body["checks"] == {"database": "ok", "broker": "ok"}

    r = await client.post("/api/v1/echo", json={"name": "abc"})
    assert r.status == 200
    assert await r.json() == {"name": "abc", "count": 1}
    r = await client.post("/api/v1/echo", json={"name": "abcdef"})
    assert r.status == 400
    assert await r.json() == {"error": {"code": "invalid_request",
                                        "message": "body.name: must have at most 5 characters"}}
    r = await client.post("/api/v1/echo", data=b'{"name": "' + b"x" * 5000 + b'"}')
    assert r.status == 413
    assert (await r.json())["error"]["code"] == "payload_too_large"
    r = await client.post("/api/v1/echo", data=b"{nope")
    assert (await r.json())["error"]["code"] == "malformed_json"
    r = await client.get("/api/v1/admin-only")
    assert r.status == 401
    assert (await r.json())["error"]["code"] == "unauthorized"
    r = await client.get("/api/v1/admin-only", headers={"Authorization": "Bearer garbage"})
    assert r.status == 401
    assert (await r.json())["error"]["code"] == "invalid_token"
    r = await client.get("/nope")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "not_found"
    r = await client.delete("/api/v1/echo")
    assert r.status == 405
    assert (await r.json())["error"]["code"] == "method_not_allowed"
    r = await client.get("/api/v1/boom")
    text = await r.text()
    assert r.status == 500
    assert "secret" not in text
    assert "Traceback" not in text
    assert await r.json() == {"error": {"code": "internal", "message": "internal server error"}}

    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    assert doc["paths"]["/api/v1/echo"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Echo"}
    assert doc["paths"]["/api/v1/admin-only"]["get"]["x-access"] == ["admin"]
    assert doc["components"]["schemas"]["Echo"]["properties"]["name"]["maxLength"] == 5
    assert "<html" in await (await client.get("/api/docs")).text()
    metrics = await (await client.get("/metrics")).text()
    assert 'gtx_http_request_duration_seconds_count{method="POST",route="/api/v1/echo",status="200"}' in metrics
    assert "gtx_db_pool_size" in metrics


async def test_readyz_reports_broker_down(config_factory, broker, client_factory) -> None:
    app = create_app(config_factory(broker), subsystems=())
    client = await client_factory(app)
    broker.stop()
    for _ in range(50):
        r = await client.get("/readyz")
        if r.status == 503:
            break
        await asyncio.sleep(0.1)
    body = await r.json()
    assert r.status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] != "ok"


async def test_background_job_runs_again_after_a_crash(config_factory, client_factory) -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        done.set()

    wired = Subsystem("flaky", jobs=lambda _services: [Job("flaky", 0.01, flaky, backoff_cap_s=0.02)])
    await client_factory(create_app(config_factory(), subsystems=(wired,)))
    await asyncio.wait_for(done.wait(), 5)
    assert len(runs) == 2
