"""Market plug-in: routes, the market services, the live channels and the background jobs.

The ledger plug-in owns the ledger adapter and the platform setup; this plug-in (installed after it) picks both up
from ``app[LEDGER]`` / ``app[LEDGER_SETUP]`` without opening a second ledger. Without a ledger the
market routes answer 503.

Background jobs (every worker runs them; the database makes them safe to run concurrently):
- clearer: closes and clears due epochs (one process at a time: advisory lock);
- settler: settles cleared trades on chain through the chain outbox (claims are exclusive: SKIP LOCKED);
- escrow resolver: decides deposits/withdrawals left in flight (e.g. by a crash);
- reconciliation: on-chain escrow vs database, exported as ``gtx_market_escrow_mismatches``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from central.app import POOL, Registry, background
from central.ledger.plugin import LEDGER, LEDGER_SETUP
from central.ledger.setup import LedgerSetup
from central.market.book import MarketBook
from central.market.config import MarketConfig
from central.market.context import MARKET, Market
from central.market.epochs import EpochClock
from central.market.escrow import Escrow
from central.market.feed import MarketFeed
from central.market.instructions import MarketInstructions as MarketChain
from central.market.reconcile import reconcile
from central.market.routes import routes
from central.market.settler import Settler
from central.market.tables import LookupTables
from central.readings.plugin import LIVE_HUB

log = logging.getLogger(__name__)


def chain_from_setup(setup: LedgerSetup) -> MarketChain:
    return MarketChain(
        setup.fee_payer, setup.escrow_authority, setup.energy_mint, setup.quote_mint, setup.treasury.pubkey
    )


def build_market(app: web.Application, config: MarketConfig) -> Market | None:
    ledger = app.get(LEDGER)
    setup = app.get(LEDGER_SETUP)
    if ledger is None or setup is None:
        return None
    chain = chain_from_setup(setup)
    pool = app[POOL]
    book = MarketBook(pool, EpochClock(config.epoch_length_s), config.fee_bps, chain.addresses)
    escrow = Escrow(pool, ledger, chain, book, confirm_wait_s=config.confirm_wait_s)
    settler = Settler(pool, ledger, chain, tables=LookupTables(pool, ledger, chain))
    return Market(config, book, escrow, settler, ledger)


def _loop(
    name: str, interval: Callable[[Market], float], step: Callable[[Market], Awaitable[object]]
) -> Callable[[web.Application], Awaitable[None]]:
    async def run(app: web.Application) -> None:
        while True:
            market = app.get(MARKET)
            if market is None:
                return
            try:
                await step(market)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("market job failed", extra={"job": name})
            await asyncio.sleep(interval(market))

    return run


async def _settle(m: Market) -> None:
    if m.settler is not None:
        await m.settler.settle_once()


async def _resolve(m: Market) -> None:
    if m.escrow is not None:
        await m.escrow.resolve_open()


async def _reconcile(m: Market) -> None:
    if m.ledger is not None and m.config.reconcile_interval_s > 0:
        report = await reconcile(m.book.pool, m.ledger)
        if report.mismatches:
            log.error("escrow reconciliation found mismatches", extra={"count": len(report.mismatches)})


def install(registry: Registry) -> None:
    registry.add_routes(routes)
    app = registry.app
    config = registry.config.market
    hub = app.get(LIVE_HUB)  # None when the readings plug-in (owner of the live socket) is not installed
    feed = MarketFeed(hub) if hub is not None else None

    async def market_ctx(app: web.Application) -> AsyncIterator[None]:
        market = build_market(app, config)
        if market is None:
            log.warning("no ledger configured: the market is unavailable")
            yield
            return
        app[MARKET] = market
        if feed is not None:
            await feed.start(market.book)
        try:
            yield
        finally:
            if feed is not None:
                await feed.stop()

    registry.add_task(market_ctx)
    registry.add_task(
        background(
            "market-clearer", _loop("clearer", lambda m: m.config.clear_interval_s, lambda m: m.book.clear_due())
        )
    )
    registry.add_task(background("market-settler", _loop("settler", lambda m: m.config.settle_interval_s, _settle)))
    registry.add_task(background("market-escrow", _loop("escrow", lambda _m: 2.0, _resolve)))
    registry.add_task(
        background(
            "market-reconcile", _loop("reconcile", lambda m: m.config.reconcile_interval_s or 3600.0, _reconcile)
        )
    )
