"""Standing orders over any ``StandingStore``: the user's commands and the per-epoch run (storage-free).

``place_due`` is the leader-only job's step (``central.wiring.market``): for the epoch open now, every active
standing order without a run is sized (``standing.size``), its run claimed (idempotent per epoch: a second leader
or a retry finds the row) and the order placed through ``MarketService.place``, the path a user's own order takes
(wallet, epoch and escrow checks). A refusal is recorded as the run's reason (``skipped``), which the user sees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from central.market.errors import InvalidOrderError, MarketError
from central.market.service import MarketService
from central.market.standing import (
    DAY,
    FORECAST_WEEKS,
    RunView,
    StandingOrder,
    StandingSpec,
    StandingStatus,
    StandingStore,
    StandingView,
    day_of,
    size,
    usual_wh,
)

log = logging.getLogger(__name__)

#: The reason a refused placement is recorded with: the same codes the HTTP API answers a hand-placed order with.
_CODES = {
    "InsufficientEscrowError": "insufficient_escrow",
    "ConflictError": "conflict",
    "EpochClosedError": "epoch_closed",
    "InvalidOrderError": "invalid_request",
}


class StandingOrders:
    def __init__(self, store: StandingStore, market: MarketService, concurrency: int = 16) -> None:
        self.store = store
        self.market = market
        self.concurrency = concurrency

    @property
    def now(self) -> Callable[[], datetime]:
        return self.market.now  # one clock with the market (epoch boundaries)

    # ------------------------------------------------------------------------------------------- the user's

    async def create(self, user_id: UUID, spec: StandingSpec) -> StandingView:
        if (why := spec.check()) is not None:
            raise InvalidOrderError(why)
        return await self.store.create(user_id, spec)

    async def list_of(self, user_id: UUID) -> list[StandingView]:
        return await self.store.list_of(user_id)

    async def get(self, user_id: UUID, standing_id: int) -> StandingView:
        return await self.store.get(user_id, standing_id)

    async def pause(self, user_id: UUID, standing_id: int) -> StandingView:
        await self.store.set_status(user_id, standing_id, StandingStatus.PAUSED)
        return await self.store.get(user_id, standing_id)

    async def resume(self, user_id: UUID, standing_id: int) -> StandingView:
        await self.store.set_status(user_id, standing_id, StandingStatus.ACTIVE)
        return await self.store.get(user_id, standing_id)

    async def delete(self, user_id: UUID, standing_id: int) -> None:
        await self.store.set_status(user_id, standing_id, StandingStatus.DELETED)

    async def runs(self, user_id: UUID, standing_id: int, limit: int = 100) -> list[RunView]:
        return await self.store.runs(user_id, standing_id, limit)

    # ------------------------------------------------------------------------------------------- the job

    async def place_due(self) -> int:
        """Run every due standing order for the epoch open now. Returns how many orders were placed."""
        epoch = self.market.clock.at(self.now())
        due = await self.store.due(epoch.start)
        if not due:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(s: StandingOrder) -> bool:
            async with gate:
                return await self._run(s, epoch.start)

        placed = sum(await asyncio.gather(*(one(s) for s in due)))
        log.info("standing orders for epoch %s: %d placed of %d due", epoch.start.isoformat(), placed, len(due))
        return placed

    async def _run(self, s: StandingOrder, start: datetime) -> bool:
        spec = s.spec
        used = await self.store.usage(s.id, day_of(start))
        available = await self.store.available_energy(s.user_id) if spec.side == "sell" else 0
        usual = None
        if spec.side == "buy":
            history = await self.store.hourly_import(s.user_id, day_of(start) - FORECAST_WEEKS * 7 * DAY, start)
            usual = usual_wh(history, self.market.clock.starting(start))
        sizing = size(spec, available=available, usual=usual, used=used)
        if not await self.store.claim(s.id, start, sizing) or sizing.reason is not None:
            return False
        try:
            order = await self.market.place(s.user_id, spec.side, sizing.qty, spec.price, "epoch", None)
        except MarketError as e:
            await self.store.finish(s.id, start, None, f"{_CODES.get(type(e).__name__, 'refused')}: {e}")
            return False
        # Any other error (e.g. connection lost) leaves the outcome unknown: the claim stays 'placing' and keeps
        # counting against the day's limits, so a lost order can never let the user exceed them.
        await self.store.finish(s.id, start, order.id, None)
        return True
