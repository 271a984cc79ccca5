"""Runs minting in the central app: the chain outbox of kind ``energy-mint`` (claims with SKIP LOCKED, so every
process may run it) and the mint routes. Needs the ledger (see ``central.wallets.plugin``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from central.app import POOL, Registry
from central.minting.routes import MINT_OUTBOX, OutboxRef, routes
from central.minting.service import mint_outbox
from central.wallets.plugin import find_chain

log = logging.getLogger(__name__)


def install(registry: Registry) -> None:
    settings = registry.config.minting
    registry.app[MINT_OUTBOX] = OutboxRef()
    registry.add_routes(routes)
    if not settings.enabled:
        return

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        chain = find_chain(app)
        if chain is None:
            log.warning("no ledger configured: minting is not running")
            yield
            return
        outbox = mint_outbox(app[POOL], chain, batch_size=settings.mint_batch, defer_seconds=settings.accrual_recheck_s)
        app[MINT_OUTBOX].outbox = outbox
        stop = asyncio.Event()
        task = asyncio.create_task(outbox.run(stop), name="minting")
        yield
        stop.set()
        await task

    registry.add_task(ctx)
