"""``[market]`` configuration, validated once into a frozen dataclass.

```toml
[market]
epoch_length_s = 900          # divides a day; epochs are UTC-aligned
fee_bps = 100                 # paid by the seller (docs/decisions/0003-integer-units.md)
clear_interval_s = 1.0        # how often each worker checks for epochs to clear (one clears: advisory lock)
settle_interval_s = 0.5       # settler pass interval when idle
reconcile_interval_s = 60.0   # escrow reconciliation job (0 = off)
confirm_wait_s = 10.0         # deposits/withdrawals: how long a request waits for confirmation
standing_interval_s = 1.0     # how often the leader looks for standing orders due in the open epoch
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from central.market.clearing import MAX_FEE_BPS
from central.market.epochs import DAY_S
from gtxconfig import Check, Range

_POSITIVE = Check(lambda v: v > 0, "must be > 0")
_DIVIDES_DAY = Check(lambda v: DAY_S % v == 0, "must divide a day (1..86400)")


@dataclass(frozen=True)
class MarketConfig:
    epoch_length_s: Annotated[int, Range(1, DAY_S), _DIVIDES_DAY] = 900
    fee_bps: Annotated[int, Range(0, MAX_FEE_BPS)] = 100
    clear_interval_s: Annotated[float, _POSITIVE] = 1.0
    settle_interval_s: Annotated[float, _POSITIVE] = 0.5
    reconcile_interval_s: Annotated[float, Range(0)] = 60.0
    confirm_wait_s: Annotated[float, _POSITIVE] = 10.0
    standing_interval_s: Annotated[float, _POSITIVE] = 1.0
