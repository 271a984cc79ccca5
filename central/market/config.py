"""``[market]`` configuration, validated once into a frozen dataclass.

```toml
[market]
epoch_length_s = 900          # divides a day; epochs are UTC-aligned
fee_bps = 100                 # paid by the seller (docs/decisions/0003-integer-units.md)
clear_interval_s = 1.0        # how often each worker checks for epochs to clear (one clears: advisory lock)
settle_interval_s = 0.5       # settler pass interval when idle
reconcile_interval_s = 60.0   # escrow reconciliation job (0 = off)
confirm_wait_s = 10.0         # deposits/withdrawals: how long a request waits for confirmation
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from central.errors import ConfigError
from central.market.clearing import MAX_FEE_BPS
from central.market.epochs import DAY_S


@dataclass(frozen=True)
class MarketConfig:
    epoch_length_s: int = 900
    fee_bps: int = 100
    clear_interval_s: float = 1.0
    settle_interval_s: float = 0.5
    reconcile_interval_s: float = 60.0
    confirm_wait_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.epoch_length_s <= DAY_S or DAY_S % self.epoch_length_s:
            raise ConfigError("market.epoch_length_s must divide a day (1..86400)")
        if not 0 <= self.fee_bps <= MAX_FEE_BPS:
            raise ConfigError(f"market.fee_bps must be 0..{MAX_FEE_BPS}")
        for name in ("clear_interval_s", "settle_interval_s", "confirm_wait_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"market.{name} must be > 0")
        if self.reconcile_interval_s < 0:
            raise ConfigError("market.reconcile_interval_s must be >= 0")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> MarketConfig:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            f = known.get(key)
            if f is None:
                raise ConfigError(f"market.{key} is not a known setting")
            want = int if f.type in ("int", int) else float
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (want is int and not isinstance(value, int))
            ):
                raise ConfigError(f"market.{key} must be a number ({want.__name__})")
            values[key] = want(value)
        return cls(**values)
