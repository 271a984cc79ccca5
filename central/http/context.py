"""Typed aiohttp application keys for the shared resources the composition root builds.

Handlers reach them through ``call.app[POOL]`` etc.; they are re-exported by ``central.app``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from central.config import CentralConfig
from central.http.routes import Route
from central.mqtt import Mqtt
from protocol.keys import DeviceKey

#: A readiness check: raises (any exception) when its dependency is not usable.
ReadyCheck = Callable[[web.Application], Awaitable[None]]

CONFIG = web.AppKey("gtx.config", CentralConfig)
POOL = web.AppKey("gtx.pool", asyncpg.Pool)
MQTT = web.AppKey("gtx.mqtt", Mqtt)
#: Central's message-signing key (protocol v1.1); present whenever MQTT is.
SIGNER = web.AppKey("gtx.signer", DeviceKey)
ROUTES = web.AppKey("gtx.routes", list[Route])
READY_CHECKS = web.AppKey("gtx.ready_checks", dict[str, ReadyCheck])
