"""The composition root: builds every adapter (pool, MQTT client, mailer, token codec) and the aiohttp app.

Subsystems plug in without editing this file: a module ``central.<name>.plugin`` listed in :data:`PLUGINS`
defines ``install(registry: Registry) -> None`` and, through the registry, adds its routes, background tasks,
MQTT subscriptions and readiness checks. Plugins whose module does not exist (yet) are skipped. See
``docs/central.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

import asyncpg
from aiohttp import web

from central.config import CentralConfig
from central.db import apply_migrations, create_pool
from central.http.auth import TokenCodec
from central.http.context import CONFIG, MQTT, POOL, READY_CHECKS, ROUTES, SIGNER, ReadyCheck
from central.http.idempotency import IDEMPOTENCY, PgIdempotency
from central.http.middleware import ACCESS_LOG, TOKENS, auth_middleware, error_middleware, metrics_middleware
from central.http.routes import MAX_BODY, TRUST_FORWARDED, Route, RouteTable, aiohttp_handler
from central.http.system import OPENAPI_CACHE, refresh_gauges
from central.http.system import routes as system_routes
from central.identity.mailer import MAILER, Mailer, build_mailer
from central.mqtt import Handler, Mqtt, PahoMqtt
from central.observability.metrics import WORKERS
from central.signing import load_signing_key

log = logging.getLogger(__name__)

#: Subsystem plugins in installation order (missing modules are skipped).
PLUGINS: tuple[str, ...] = (
    "central.identity.plugin",
    "central.ingest.plugin",
    "central.readings.plugin",
    "central.ledger.plugin",
    "central.chain.plugin",
    "central.wallets.plugin",
    "central.accounting.plugin",
    "central.minting.plugin",
    "central.market.plugin",
    "central.certificates.plugin",
)

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

__all__ = [
    "CONFIG",
    "MAILER",
    "MQTT",
    "PLUGINS",
    "POOL",
    "SIGNER",
    "TOKENS",
    "CleanupCtx",
    "Registry",
    "create_app",
]


class Registry:
    """What a plugin's ``install(registry)`` may use. Resources (pool, MQTT client) are reached at run time through
    ``app[POOL]`` / ``app[MQTT]``; the pool exists once the app has started (inside tasks and handlers)."""

    def __init__(self, app: web.Application, config: CentralConfig, mqtt: Mqtt | None) -> None:
        self.app = app
        self.config = config
        self._mqtt = mqtt
        self.routes: list[Route] = []
        self.tasks: list[CleanupCtx] = []

    @property
    def mqtt_enabled(self) -> bool:
        return self._mqtt is not None

    def add_routes(self, table: RouteTable | Iterable[Route]) -> None:
        """Add declared routes (each carries its access and schemas; undeclared routes are impossible)."""
        self.routes.extend(table.routes if isinstance(table, RouteTable) else table)

    def add_task(self, ctx: CleanupCtx) -> None:
        """An aiohttp cleanup context (start before ``yield``, stop after). Runs after the pool and MQTT client
        are up, and is stopped before they close. Use :func:`background` for a plain forever-loop."""
        self.tasks.append(ctx)

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1, concurrency: int = 1) -> None:
        """Subscribe the shared MQTT client (re-subscribed on every reconnect). Use ``$share/central/...`` for
        topics that several worker processes must split between them."""
        if self._mqtt is None:
            raise RuntimeError("MQTT is disabled in this configuration (mqtt.enabled = false)")
        self._mqtt.subscribe(topic_filter, handler, qos=qos, concurrency=concurrency)

    def add_ready_check(self, name: str, check: ReadyCheck) -> None:
        """``/readyz`` fails (503) while ``check(app)`` raises or takes longer than 2 s."""
        self.app[READY_CHECKS][name] = check


Installer = Callable[[Registry], None]


def background(name: str, fn: Callable[[web.Application], Awaitable[None]]) -> CleanupCtx:
    """A cleanup context that runs ``fn(app)`` as a task for the app's lifetime and cancels it on shutdown.
    ``fn`` should loop and handle its own errors; returning means it is done (e.g. its subsystem is not configured).
    If it raises anyway, the error is logged and ``fn`` is started again after a back-off (1 s doubling to 60 s),
    so one bug cannot silently stop a subsystem."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def supervised() -> None:
            delay = 1.0
            while True:
                try:
                    await fn(app)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background task crashed; restarting", extra={"task": name})
                else:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

        task = asyncio.create_task(supervised(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    ctx.__name__ = f"background:{name}"
    return ctx


def _plugin_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def create_app(
    config: CentralConfig,
    *,
    mqtt: Mqtt | None = None,
    mailer: Mailer | None = None,
    plugins: Sequence[str | Installer] | None = None,
) -> web.Application:
    """Build the application. ``mqtt`` / ``mailer`` replace the configured adapters (tests pass fakes only in
    unit tests); ``plugins`` (module names or ``install`` functions) replaces :data:`PLUGINS`."""
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, auth_middleware],
        client_max_size=config.http.max_body_bytes,
    )
    app[CONFIG] = config
    app[TOKENS] = TokenCodec(config.auth)
    app[READY_CHECKS] = {}
    app[OPENAPI_CACHE] = {}
    app[TRUST_FORWARDED] = config.http.trust_forwarded_for
    app[MAX_BODY] = config.http.max_body_bytes
    app[IDEMPOTENCY] = PgIdempotency(lambda: app[POOL], config.http.idempotency_ttl_s)
    app[ACCESS_LOG] = config.log.access_log
    app[MAILER] = mailer if mailer is not None else build_mailer(config.mailer)

    client: Mqtt | None = mqtt
    if client is None and config.mqtt.enabled:
        client = PahoMqtt(config.mqtt)
    if client is not None:
        app[MQTT] = client
    if client is not None or config.mqtt.signing_key_file:  # HTTP challenges are signed too
        app[SIGNER] = load_signing_key(config.mqtt.signing_key_file)

    app.cleanup_ctx.append(_pool_ctx)
    app[READY_CHECKS]["database"] = _check_db
    if client is not None:
        app.cleanup_ctx.append(_mqtt_ctx)
        app[READY_CHECKS]["broker"] = _check_broker

    registry = Registry(app, config, client)
    registry.add_routes(system_routes)
    for plugin in PLUGINS if plugins is None else plugins:
        if callable(plugin):
            plugin(registry)
            continue
        if not _plugin_exists(plugin):
            log.debug("plugin not present", extra={"plugin": plugin})
            continue
        importlib.import_module(plugin).install(registry)
    for route in registry.routes:
        app.router.add_route(route.method, route.path, aiohttp_handler(route))
    app[ROUTES] = list(registry.routes)
    app.cleanup_ctx.append(background("gauges", _gauges))
    app.cleanup_ctx.extend(registry.tasks)
    return app


async def _gauges(app: web.Application) -> None:
    """Keep this worker's pool/broker gauges current (multiprocess scrapes read every worker's last value)."""
    WORKERS.set(1)
    while True:
        refresh_gauges(app)
        await asyncio.sleep(5.0)


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.check_secret_files()  # before the database (and its migrations) is touched
    pool = await create_pool(config.database)
    try:
        if config.database.migrate_on_start:
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                log.info("migrations applied", extra={"migrations": applied})
        app[POOL] = pool
        yield
    finally:
        await pool.close()


async def _mqtt_ctx(app: web.Application) -> AsyncIterator[None]:
    client = app[MQTT]
    await client.start()
    try:
        yield
    finally:
        await client.stop()


async def _check_db(app: web.Application) -> None:
    pool: asyncpg.Pool = app[POOL]
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


async def _check_broker(app: web.Application) -> None:
    if not app[MQTT].connected:
        raise ConnectionError("not connected to the MQTT broker")
