"""Typed aiohttp application keys for what the composition root (``central.app``) sets once at start-up.

Handlers reach their subsystem's services through ``call.services`` (the :data:`SERVICES` key, a
``central.services.Services``); the keys below are the HTTP layer's own (config, pool and broker for the system
routes, declared routes, readiness checks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from central.config import CentralConfig
from central.http.routes import SERVICES, Route
from central.mqtt import Mqtt

#: A readiness check: raises (any exception) when its dependency is not usable.
ReadyCheck = Callable[[], Awaitable[None]]

CONFIG = web.AppKey("gtx.config", CentralConfig)
POOL = web.AppKey("gtx.pool", asyncpg.Pool)
MQTT = web.AppKey("gtx.mqtt", Mqtt)
ROUTES = web.AppKey("gtx.routes", list[Route])
READY_CHECKS = web.AppKey("gtx.ready_checks", dict[str, ReadyCheck])

__all__ = ["CONFIG", "MQTT", "POOL", "READY_CHECKS", "ROUTES", "SERVICES", "ReadyCheck"]
