"""Operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document and the docs page."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from central.http.context import CONFIG, MQTT, POOL, READY_CHECKS, ROUTES
from central.http.docs_page import DOCS_CSP, DOCS_HTML
from central.http.openapi import build_openapi
from central.http.roles import PUBLIC
from central.http.routes import Call, Route, RouteTable
from central.observability.metrics import MQTT_CONNECTED, POOL_IDLE, POOL_IN_USE, POOL_MAX, POOL_SIZE, exposition

log = logging.getLogger(__name__)

routes = RouteTable(tag="system")
OPENAPI_CACHE = web.AppKey("gtx.openapi_cache", dict[str, bytes])


@dataclass(frozen=True)
class Health:
    status: str


@dataclass(frozen=True)
class Readiness:
    """``checks`` maps each dependency to "ok" or the reason it is not ready."""

    status: str
    checks: dict[str, str] = field(default_factory=dict)


@routes.get("/healthz", access=PUBLIC, response=Health, summary="Liveness: the process serves HTTP")
async def healthz(_call: Call[None, None]) -> Health:
    return Health("ok")


@routes.get("/readyz", access=PUBLIC, response=Readiness, other_responses=((503, Readiness),),
            summary="Readiness: database, broker and every subsystem check answer")
async def readyz(call: Call[None, None]) -> web.Response:
    checks: dict[str, str] = {}
    for name, check in call.app[READY_CHECKS].items():
        try:
            await asyncio.wait_for(check(), timeout=2.0)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is reported
            # Public route: the error text (addresses, URLs, DSNs) goes to the log, only its kind to the caller.
            log.warning("readiness check failed", extra={"check": name, "error": f"{type(exc).__name__}: {exc}"})
            checks[name] = f"failed: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    return web.json_response(body, status=200 if ok else 503)


@routes.get("/metrics", access=PUBLIC, content_type="text/plain",
            summary="Prometheus metrics (HTTP latency by route, pool usage, subsystem metrics)")
async def metrics(call: Call[None, None]) -> web.Response:
    refresh_gauges(call.app)
    resp = web.Response(body=exposition(call.app[CONFIG].http.metrics_dir))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def refresh_gauges(app: web.Application) -> None:
    """Set this process's pool and broker gauges (also done every few seconds by the core's gauge task)."""
    pool = app.get(POOL)
    if pool is not None:
        size = pool.get_size()
        idle = pool.get_idle_size()
        POOL_SIZE.set(size)
        POOL_IDLE.set(idle)
        POOL_IN_USE.set(size - idle)
        POOL_MAX.set(pool.get_max_size())
    mqtt = app.get(MQTT)
    MQTT_CONNECTED.set(1 if mqtt is not None and mqtt.connected else 0)


def openapi_document(app: web.Application) -> dict[str, Any]:
    cfg = app[CONFIG]
    declared: list[Route] = app[ROUTES]
    return build_openapi(declared, title="GridTokenX central API", version="1",
                         server_url=cfg.http.public_base_url)


@routes.get("/api/openapi.json", access=PUBLIC, response={"type": "object"},
            summary="This OpenAPI 3.1 document (generated from the route declarations)")
async def openapi_json(call: Call[None, None]) -> web.Response:
    cache = call.app[OPENAPI_CACHE]
    if "doc" not in cache:
        cache["doc"] = json.dumps(openapi_document(call.app), indent=1).encode()
    return web.Response(body=cache["doc"], content_type="application/json")


@routes.get("/api/docs", access=PUBLIC, content_type="text/html", summary="Interactive API documentation")
async def docs(_call: Call[None, None]) -> web.Response:
    return web.Response(text=DOCS_HTML, content_type="text/html", headers={"Content-Security-Policy": DOCS_CSP})
