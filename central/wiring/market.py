"""Market: routes, the live market feed, and the background jobs (every worker runs them; the database makes them
safe to run concurrently):

- clearer: closes and clears due epochs (one process at a time: advisory lock inside ``clear_due``);
- settler: settles cleared trades on chain through the chain outbox (claims are exclusive: SKIP LOCKED);
- escrow resolver: decides deposits/withdrawals left in flight (e.g. by a crash);
- reconciliation: on-chain escrow vs database, exported as ``gtx_market_escrow_mismatches``;
- standing orders: the leader (advisory lock ``locks.MARKET_STANDING``) places the open epoch's standing orders.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from central import locks
from central.db.leadership import XactLock
from central.errors import Unavailable
from central.jobs import Job
from central.market import matching_routes, report_routes, routes, standing_routes
from central.market.reconcile import reconcile
from central.services import Services
from central.wiring import Subsystem

log = logging.getLogger(__name__)

ESCROW_INTERVAL_S = 2.0


def jobs(services: Services) -> Sequence[Job]:
    market = services.market.market
    if isinstance(market, Unavailable):
        return ()
    config = market.config

    async def clear() -> None:
        await market.book.clear_due()

    async def settle() -> None:
        await market.settler.settle_once()

    async def resolve() -> None:
        await market.escrow.resolve_open()
        await market.matching.resolve_open()

    async def check_escrow() -> None:
        report = await reconcile(market.book.pool, market.platform)
        if report.mismatches:
            log.error("escrow reconciliation found mismatches", extra={"count": len(report.mismatches)})

    async def place_standing() -> None:
        await market.standing.place_due()

    found = [
        Job("market-clearer", config.clear_interval_s, clear),
        Job("market-settler", config.settle_interval_s, settle),
        Job("market-escrow", ESCROW_INTERVAL_S, resolve),
        # leader-only: one process places the open epoch's standing orders (runs are idempotent per epoch anyway)
        Job("market-standing", config.standing_interval_s, place_standing,
            lock=XactLock(services.pool, locks.MARKET_STANDING)),
    ]
    if config.reconcile_interval_s > 0:
        found.append(Job("market-reconcile", config.reconcile_interval_s, check_escrow))
    return found


@contextlib.asynccontextmanager
async def lifetime(services: Services) -> AsyncIterator[None]:
    market, feed = services.market.market, services.market.feed
    if isinstance(market, Unavailable):
        yield
        return
    await feed.start(market.book)
    try:
        yield
    finally:
        await feed.stop()


SUBSYSTEM = Subsystem(
    "market",
    routes=(routes.routes, standing_routes.routes, matching_routes.routes, report_routes.routes),
    jobs=jobs,
    lifetime=lifetime,
)
