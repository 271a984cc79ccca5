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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from solders.pubkey import Pubkey

from central.market.clearing import MAX_FEE_BPS, MAX_PRICE
from central.market.epochs import DAY_S
from central.market.errors import InvalidOrderError
from central.market.zones import MAX_PATH_BPS, ROOT, Boundary, Zone, ZoneParams
from gtxconfig import Check, Invalid, Range

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


# ------------------------------------------------------------------------------------------------- zones

_BPS = Range(0, MAX_PATH_BPS)
_PRICE = Range(0, MAX_PRICE)
_HOUR = Range(0, 23)


def _is_pubkey_or_empty(v: str) -> bool:
    if not v:
        return True
    try:
        Pubkey.from_string(v)
    except ValueError:
        return False
    return True


def _is_uuid_or_empty(v: str) -> bool:
    if not v:
        return True
    try:
        UUID(v)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class TimeOfUse:
    """Values of a zone that differ in some hours of the day (UTC hour of the epoch's start); unset = the zone's."""

    hours: tuple[Annotated[int, _HOUR], ...]
    fee_per_kwh: Annotated[int, _PRICE] | None = None
    fee_bps: Annotated[int, _BPS] | None = None
    loss_bps: Annotated[int, _BPS] | None = None
    retail: Annotated[int, _PRICE] | None = None
    feed_in: Annotated[int, _PRICE] | None = None


@dataclass(frozen=True)
class ZoneConfig:
    """One zone (``[[zones.zone]]``): its parent ("" = the root), what crossing its boundary costs (quote base units
    per kWh, bps of value, bps of energy lost), the utility's tariffs there (0 = not offered), its meters (serials)
    and its time-of-use periods."""

    name: Annotated[str, Check(bool, "must not be empty")]
    parent: str = ""
    fee_per_kwh: Annotated[int, _PRICE] = 0
    fee_bps: Annotated[int, _BPS] = 0
    loss_bps: Annotated[int, _BPS] = 0
    retail: Annotated[int, _PRICE] = 0
    feed_in: Annotated[int, _PRICE] = 0
    meters: tuple[str, ...] = ()
    tou: tuple[TimeOfUse, ...] = ()

    def at_hour(self, hour: int, parent: int) -> Zone:
        v = {k: getattr(self, k) for k in ("fee_per_kwh", "fee_bps", "loss_bps", "retail", "feed_in")}
        for period in self.tou:
            if hour in period.hours:
                v.update({k: x for k in v if (x := getattr(period, k)) is not None})
        return Zone(
            self.name, parent, Boundary(v["fee_per_kwh"], v["fee_bps"], v["loss_bps"]), v["retail"], v["feed_in"]
        )


@dataclass(frozen=True)
class ZonesConfig:
    """``[zones]``: the grid zone tree (docs/decisions/0017-zonal-clearing.md). No zones = one zone, no fees.

    ```toml
    [zones]
    grid_operator = "6aiCznzG1uio372aZuQsqSLSpGiut3WtcBqJi4Pf7rXH"  # gets grid fees and losses
    default_zone = "grid"           # zone of meters no zone lists ("" = the root)
    utility_user = "5f0c6f1e-8d3a-4b7e-9a51-0c2d3e4f5a6b"  # the utility's user (its escrow funds its trades); "" = none

    [[zones.zone]]
    name = "grid"
    retail = 300                    # the utility sells here at 300 quote units/kWh ...
    feed_in = 80                    # ... and buys at 80
    [[zones.zone]]
    name = "north"
    parent = "grid"
    fee_per_kwh = 20
    loss_bps = 100
    meters = ["SN-1", "SN-2"]
    [[zones.zone.tou]]
    hours = [17, 18, 19, 20]
    fee_per_kwh = 40
    ```
    The root comes first and every zone after its parent. Parsed once: the zone tree of each hour of the day is
    built here (``params_at``), validated (path limits of ``central.market.zones``)."""

    grid_operator: Annotated[str, Check(_is_pubkey_or_empty, "must be a wallet address (base58) or empty")] = ""
    default_zone: str = ""
    #: The utility's user id ("" = no utility: tariffs are not offered). Its market account trades at the zones'
    #: tariffs, within what its escrow holds (Wh to sell, quote to pay).
    utility_user: Annotated[str, Check(_is_uuid_or_empty, "must be a user id (UUID) or empty")] = ""
    zone: tuple[ZoneConfig, ...] = ()
    _by_hour: tuple[ZoneParams, ...] = field(init=False, repr=False, compare=False, default=())
    _meter_zone: dict[str, int] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        zones = self.zone or (ZoneConfig("grid"),)
        index: dict[str, int] = {}
        parents: list[int] = []
        for i, z in enumerate(zones):
            if z.name in index:
                raise Invalid("zone", f"zone {z.name!r} is listed twice")
            if i == 0 and z.parent:
                raise Invalid("zone", f"the first zone ({z.name!r}) must be the root (no parent)")
            if i and z.parent not in index:
                raise Invalid("zone", f"zone {z.name!r}: parent {z.parent!r} must be listed before it")
            index[z.name] = i
            parents.append(index[z.parent] if i else ROOT)
        if self.default_zone and self.default_zone not in index:
            raise Invalid("default_zone", f"no zone {self.default_zone!r}")
        meters: dict[str, int] = {}
        for i, z in enumerate(zones):
            for serial in z.meters:
                if serial in meters:
                    raise Invalid("zone", f"meter {serial!r} is in two zones")
                meters[serial] = i
        try:
            by_hour = tuple(
                ZoneParams(tuple(z.at_hour(h, p) for z, p in zip(zones, parents, strict=True))) for h in range(24)
            )
        except InvalidOrderError as exc:
            raise Invalid("zone", str(exc)) from None
        paid = any(z.boundary != Boundary() for p in by_hour for z in p.zones)
        if paid and not self.grid_operator:
            raise Invalid("grid_operator", "is required once a zone has a grid fee or a loss")
        object.__setattr__(self, "_by_hour", by_hour)
        object.__setattr__(self, "_meter_zone", meters)

    @property
    def utility(self) -> UUID | None:
        return UUID(self.utility_user) if self.utility_user else None

    def params_at(self, at: datetime) -> ZoneParams:
        """The zone tree in force for an epoch starting at ``at`` (time of use by its UTC hour)."""
        return self._by_hour[at.astimezone(UTC).hour]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(z.name for z in self._by_hour[0].zones)

    def zone_of_meter(self, serial: str) -> int:
        """Index of a meter's zone (unlisted meters: ``default_zone``, else the root)."""
        if serial in self._meter_zone:
            return self._meter_zone[serial]
        return self._by_hour[0].index[self.default_zone] if self.default_zone else 0
