"""Runs the accounting service in the central app: every ``minting.accounting_interval_s`` it settles the meters
with newly final windows (and enqueues their mints). One accountant at a time across processes (advisory lock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.app import CONFIG, POOL, Registry, background
from central.errors import CentralError

log = logging.getLogger(__name__)

#: pg_advisory_lock key of the single accountant (ASCII "GTXACCT").
ACCOUNTANT_LOCK = 0x47_54_58_41_43_43_54


@contextlib.asynccontextmanager
async def accountant_lock(conn: Any) -> AsyncIterator[bool]:
    """Hold the accountant lock on ``conn`` for the block; yields False when another session holds it."""
    got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", ACCOUNTANT_LOCK))
    try:
        yield got
    finally:
        if got:
            await conn.execute("SELECT pg_advisory_unlock($1)", ACCOUNTANT_LOCK)


async def settle_all(service: AccountingService, lock_conn: Any) -> int:
    """Settle until nothing is due, if this session gets the accountant lock (held on ``lock_conn``, a connection
    of its own so that a pass never waits for a pool connection while holding one); returns windows finalised."""
    total = 0
    async with accountant_lock(lock_conn) as got:
        if got:
            while n := await service.run_once():
                total += n
    return total


def install(registry: Registry) -> None:
    settings = registry.config.minting
    if not settings.enabled:
        return

    async def loop(app: web.Application) -> None:
        service = AccountingService(
            PgAccountingStore(app[POOL]), settings.window_ms, settings.accounting_batch,
            max_windows=settings.accounting_max_windows,
        )
        lock_conn: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    if lock_conn is None or lock_conn.is_closed():
                        lock_conn = await asyncpg.connect(app[CONFIG].database.dsn)
                    n = await settle_all(service, lock_conn)
                    if n:
                        log.info("settlement windows final", extra={"windows": n})
                except (CentralError, asyncpg.PostgresError, OSError):
                    log.exception("accounting pass failed; retrying")
                await asyncio.sleep(settings.accounting_interval_s)
        finally:
            if lock_conn is not None:
                await lock_conn.close()

    registry.add_task(background("accounting", loop))
