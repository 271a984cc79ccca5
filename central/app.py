"""The composition root: opens the adapters, builds the services, wires the subsystems, and builds the aiohttp app.

At start-up, in one context (:func:`_run`), in this order, and stopped in the reverse order:

1. adapters: the PostgreSQL pool (migrations applied when ``database.migrate_on_start``), the ledger (when the ledger
   subsystem is wired), the MQTT client object;
2. ``bootstrap(config, adapters)`` builds :class:`~central.services.Services` (set once under ``SERVICES``; handlers
   read it as ``call.services``);
3. each subsystem's MQTT subscriptions, then the MQTT client starts;
4. each subsystem's lifetime (live hub, market feed, ...), in :data:`SUBSYSTEMS` order;
5. one :class:`~central.jobs.JobRunner` with every subsystem's jobs (and the app's gauge refresher).

The subsystems are listed in :data:`SUBSYSTEMS` as code (``central.wiring.<name>.SUBSYSTEM``);
``tests/central/test_composition_root.py`` fails when a subsystem package is not wired. See ``docs/central.md`` and
``docs/decisions/0013-explicit-composition-root.md``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
from aiohttp import web

from central.accounting.mint_intent import MINT_KIND
from central.bootstrap import Adapters, bootstrap
from central.config import CentralConfig
from central.db import apply_migrations, create_pool
from central.errors import Unavailable
from central.http.audit import AUDIT, AuditLog
from central.http.auth import TokenCodec
from central.http.context import CONFIG, MQTT, POOL, READY_CHECKS, ROUTES, SERVICES, ReadyCheck
from central.http.idempotency import IDEMPOTENCY, PgIdempotency
from central.http.middleware import ACCESS_LOG, TOKENS, auth_middleware, error_middleware, metrics_middleware
from central.http.ratelimit import AUTH_BODY_LIMIT, RATE_LIMITER, RateLimiter, rate_limit_middleware
from central.http.routes import MAX_BODY, TRUST_FORWARDED, Route, aiohttp_handler
from central.http.security import SECURITY, Security, add_headers, cors_middleware
from central.http.system import OPENAPI_CACHE, refresh_gauges
from central.http.system import routes as system_routes
from central.http.webapp import routes as web_routes
from central.identity.mailer import Mailer, build_mailer
from central.jobs import Job, JobRunner
from central.ledger.runtime import LedgerRuntime, running_ledger
from central.mqtt import Mqtt, PahoMqtt
from central.observability import health
from central.observability.metrics import WORKERS
from central.services import Services
from central.signing import load_signing_key
from central.wiring import (
    Subsystem,
    accounting,
    archive,
    broker,
    certificates,
    identity,
    ingest,
    ledger,
    market,
    minting,
    readings,
    wallets,
)

log = logging.getLogger(__name__)

#: Every subsystem, in start order (lifetimes start in this order and stop in reverse).
SUBSYSTEMS: tuple[Subsystem, ...] = (
    broker.SUBSYSTEM,
    identity.SUBSYSTEM,
    ingest.SUBSYSTEM,
    readings.SUBSYSTEM,
    archive.SUBSYSTEM,
    ledger.SUBSYSTEM,
    wallets.SUBSYSTEM,
    accounting.SUBSYSTEM,
    minting.SUBSYSTEM,
    market.SUBSYSTEM,
    certificates.SUBSYSTEM,
)

#: How often each worker refreshes its pool and broker gauges.
GAUGES_INTERVAL_S = 5.0
#: How often the fleet, minting-backlog and chain-outbox gauges are read from the database.
HEALTH_INTERVAL_S = 15.0

__all__ = ["CONFIG", "MQTT", "POOL", "SERVICES", "SUBSYSTEMS", "TOKENS", "create_app"]


def declared_routes(subsystems: Sequence[Subsystem] = SUBSYSTEMS) -> list[Route]:
    """Every route the app serves, in registration order (the OpenAPI document is built from these)."""
    declared: list[Route] = list(system_routes.routes)
    for subsystem in subsystems:
        for table in subsystem.routes:
            declared.extend(table.routes)
    declared.extend(web_routes.routes)
    return declared


def create_app(
    config: CentralConfig,
    *,
    subsystems: Sequence[Subsystem] = SUBSYSTEMS,
    mqtt: Mqtt | None = None,
    mailer: Mailer | None = None,
    ledger_runtime: LedgerRuntime | None = None,
    customise: Callable[[Services], Services] | None = None,
) -> web.Application:
    """Build the application. ``subsystems`` replaces :data:`SUBSYSTEMS` (tests wire a few); ``mqtt`` / ``mailer``
    replace the configured adapters; ``ledger_runtime`` is an already-open ledger used instead of the configured
    one, which is opened when the ledger subsystem is wired. ``customise`` may replace built services before
    anything starts (tests put a service over their own fake or chain there)."""
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, cors_middleware, auth_middleware, rate_limit_middleware],
        client_max_size=config.http.max_body_bytes,
    )
    tokens = TokenCodec(config.auth)
    app[CONFIG] = config
    app[TOKENS] = tokens
    _http_layer(app, config)

    client: Mqtt | None = mqtt
    if client is None and config.mqtt.enabled:
        client = PahoMqtt(config.mqtt)
    if client is not None:
        app[MQTT] = client
    # HTTP challenges are signed too, so the key is loaded whenever MQTT is on or a key file is configured.
    signer = load_signing_key(config.mqtt.signing_key_file) if client is not None or config.mqtt.signing_key_file \
        else None
    mail = mailer if mailer is not None else build_mailer(config.mailer)

    declared = declared_routes(subsystems)
    for route in declared:
        app.router.add_route(route.method, route.path, aiohttp_handler(route))
    app[ROUTES] = declared

    open_ledger = ledger.SUBSYSTEM in subsystems

    async def run(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            pool = await stack.enter_async_context(_pool(config))
            app[POOL] = pool
            bulk = await stack.enter_async_context(_bulk(config, replica=False))
            replica = (await stack.enter_async_context(_bulk(config, replica=True))
                       if config.database.replica_dsn else None)
            runtime = ledger_runtime
            if runtime is None and open_ledger:
                runtime = await stack.enter_async_context(running_ledger(config.ledger))
            services = bootstrap(config, Adapters(
                pool=pool, mqtt=client, ledger=runtime, mailer=mail, signer=signer, tokens=tokens, replica=replica,
                bulk=bulk,
            ))
            if customise is not None:
                services = customise(services)
            app[SERVICES] = services
            _log_unavailable(services)
            app[READY_CHECKS].update(_ready_checks(services, subsystems))
            if client is not None:
                for subsystem in subsystems:
                    subsystem.subscribe(services, client)
                await client.start()
                stack.push_async_callback(client.stop)
            for subsystem in subsystems:
                await stack.enter_async_context(subsystem.lifetime(services))
            runner = JobRunner([_gauges(app), _health(pool), *(j for s in subsystems for j in s.jobs(services))])
            await stack.enter_async_context(runner)
            yield

    app.cleanup_ctx.append(run)
    return app


def _http_layer(app: web.Application, config: CentralConfig) -> None:
    """The HTTP layer's own state: limits, security headers, audit log, idempotency, access log."""
    app[READY_CHECKS] = {}
    app[OPENAPI_CACHE] = {}
    app[TRUST_FORWARDED] = config.http.trust_forwarded_for
    app[MAX_BODY] = config.http.max_body_bytes
    app[AUTH_BODY_LIMIT] = config.http.auth_max_body_bytes
    app[RATE_LIMITER] = RateLimiter(config.http.rate_limit)
    app[SECURITY] = Security.of(config.http)
    app.on_response_prepare.append(add_headers)
    app[AUDIT] = AuditLog(lambda: app[POOL])
    app[IDEMPOTENCY] = PgIdempotency(lambda: app[POOL], config.http.idempotency_ttl_s)
    app[ACCESS_LOG] = config.log.access_log


@contextlib.asynccontextmanager
async def _pool(config: CentralConfig) -> AsyncIterator[asyncpg.Pool]:
    config.check_secret_files()  # before the database (and its migrations) is touched
    pool = await create_pool(config.database)
    try:
        if config.database.migrate_on_start:
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                log.info("migrations applied", extra={"migrations": applied})
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _bulk(config: CentralConfig, *, replica: bool) -> AsyncIterator[asyncpg.Pool]:
    """A bulk-read pool (central/db/pool.py): the read replica's (never migrated: a standby is read-only and replays
    the primary's migrations) or the primary's (opened after the main pool has migrated)."""
    pool = await create_pool(config.database, replica=replica, bulk=True)
    try:
        yield pool
    finally:
        await pool.close()


def _ready_checks(services: Services, subsystems: Sequence[Subsystem]) -> dict[str, ReadyCheck]:
    pool = services.pool

    async def database() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    checks: dict[str, ReadyCheck] = {"database": database}
    mqtt = services.mqtt
    if mqtt is not None:
        async def broker() -> None:
            if not mqtt.connected:
                raise ConnectionError("not connected to the MQTT broker")

        checks["broker"] = broker
    for subsystem in subsystems:
        checks.update(subsystem.ready_checks(services))
    return checks


def _gauges(app: web.Application) -> Job:
    """Keep this worker's pool/broker gauges current (multiprocess scrapes read every worker's last value)."""
    WORKERS.set(1)

    async def refresh() -> None:
        refresh_gauges(app)

    return Job("gauges", GAUGES_INTERVAL_S, refresh, jitter=0.0)


def _log_unavailable(services: Services) -> None:
    if isinstance(services.wallets.chain, Unavailable):
        log.warning("no ledger configured: wallet balances, faucet, minting, market and certificates are unavailable")


def _health(pool: asyncpg.Pool) -> Job:
    """The database-derived health gauges (``central.observability.health``) the alert rules read."""

    async def refresh() -> None:
        await health.refresh(pool, MINT_KIND)

    return Job("health-gauges", HEALTH_INTERVAL_S, refresh)
