"""The market's services as one object (built by ``central.bootstrap``, reached as ``call.services.market``)."""

from __future__ import annotations

from dataclasses import dataclass

from central.ledger.platform import Platform
from central.ledger.port import Ledger
from central.market.book import MarketBook
from central.market.config import MarketConfig
from central.market.escrow import Escrow
from central.market.matching_service import Matching
from central.market.settler import Settler
from central.market.standing_service import StandingOrders


@dataclass(frozen=True)
class Market:
    config: MarketConfig
    book: MarketBook
    # Built only with a ledger: without one the composition root makes the whole market `Unavailable` (503).
    escrow: Escrow
    settler: Settler
    #: the one "ledger + platform keys" bundle the escrow and the settler were built on
    platform: Platform
    #: standing orders, placed every epoch by the leader-only job through ``book.place``
    standing: StandingOrders
    #: hourly consumption matching (burns against metered import, statements, claims)
    matching: Matching

    @property
    def ledger(self) -> Ledger:
        return self.platform.ledger
