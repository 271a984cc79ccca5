"""Grid zones (pure): the zone tree with each boundary's grid fee and loss, and the utility's prices, as they apply
to one epoch (docs/decisions/0017-zonal-clearing.md).

A zone's *boundary* is the line between it and its parent. Energy that leaves or enters zone ``z`` (the root has no
boundary) pays ``z``'s grid fee — ``fee_per_kwh`` quote base units per kWh plus ``fee_bps`` of the trade's value —
and loses ``loss_bps`` of the energy. A trade between two zones crosses every boundary on the tree path between them
(below their lowest common ancestor), once each. ``retail`` and ``feed_in`` are the utility's prices in the zone
(quote base units per kWh; 0 = the utility does not sell / buy there).

``ZoneParams`` holds one epoch's values (time-of-use schedules already resolved, ``central.market.tariffs``); its
canonical encoding is part of the published order set (``central.market.zonal``), so anyone can recompute the clearing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from central.market.clearing import MAX_PRICE
from central.market.errors import InvalidOrderError

#: Sum of a path's loss (or percentage fee) from any zone to the root, in basis points: at most half.
MAX_PATH_BPS: Final = 5_000
#: Sum of a path's constant fees from any zone to the root (quote base units per kWh).
MAX_PATH_FEE: Final = MAX_PRICE
MAX_ZONES: Final = 2**15 - 1
ROOT: Final = -1
_NO_PARENT: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Boundary:
    """What crossing one zone's boundary costs (one epoch's values)."""

    fee_per_kwh: int = 0
    fee_bps: int = 0
    loss_bps: int = 0


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    parent: int  # index of the parent zone, ROOT (-1) for the root
    boundary: Boundary = Boundary()
    retail: int = 0  # utility sells at this price (0 = not offered)
    feed_in: int = 0  # utility buys at this price (0 = not offered)


@dataclass(frozen=True, eq=False)
class ZoneParams:
    """The zone tree for one epoch. Zones are indexed 0..n-1; every parent index is smaller than its child's (so the
    root is zone 0 and a forward pass visits parents first)."""

    zones: tuple[Zone, ...]
    #: What the utility can deliver this epoch: Wh it can sell and quote base units it can pay (-1 = unlimited).
    utility_energy: int = -1
    utility_quote: int = -1

    def __post_init__(self) -> None:
        if self.utility_energy < -1 or self.utility_quote < -1:
            raise InvalidOrderError("utility capacities are -1 (unlimited) or >= 0")
        zs = self.zones
        if not zs or len(zs) > MAX_ZONES:
            raise InvalidOrderError(f"a zone tree has 1..{MAX_ZONES} zones")
        if zs[0].parent != ROOT or any(not 0 <= z.parent < i for i, z in enumerate(zs) if i):
            raise InvalidOrderError("zone 0 is the root and every other zone's parent comes before it")
        if len({z.name for z in zs}) != len(zs):
            raise InvalidOrderError("zone names must be unique")
        for z in zs:
            b = z.boundary
            if min(b.fee_per_kwh, b.fee_bps, b.loss_bps, z.retail, z.feed_in) < 0:
                raise InvalidOrderError(f"zone {z.name}: fees, losses and prices must be >= 0")
            if max(z.retail, z.feed_in) > MAX_PRICE:
                raise InvalidOrderError(f"zone {z.name}: utility prices must be <= {MAX_PRICE}")
        if zs[0].boundary != Boundary():
            raise InvalidOrderError("the root zone has no boundary (no fee, no loss)")
        for i in range(len(zs)):
            fee, bps, loss = self.path_fee[i], self.path_fee_bps[i], self.path_loss_bps[i]
            if fee > MAX_PATH_FEE or bps > MAX_PATH_BPS or loss > MAX_PATH_BPS:
                raise InvalidOrderError(
                    f"zone {zs[i].name}: path to the root exceeds a limit (fee {fee} <= {MAX_PATH_FEE}, "
                    f"fee bps {bps} <= {MAX_PATH_BPS}, loss bps {loss} <= {MAX_PATH_BPS})"
                )

    @classmethod
    def single(cls, name: str = "grid") -> ZoneParams:
        return cls((Zone(name, ROOT),))

    def __len__(self) -> int:
        return len(self.zones)

    @cached_property
    def index(self) -> dict[str, int]:
        return {z.name: i for i, z in enumerate(self.zones)}

    @cached_property
    def depth(self) -> tuple[int, ...]:
        d: list[int] = []
        for z in self.zones:
            d.append(0 if z.parent == ROOT else d[z.parent] + 1)
        return tuple(d)

    def _path_sum(self, attr: str) -> tuple[int, ...]:
        out: list[int] = []
        for z in self.zones:
            out.append(0 if z.parent == ROOT else out[z.parent] + getattr(z.boundary, attr))
        return tuple(out)

    @cached_property
    def path_fee(self) -> tuple[int, ...]:
        return self._path_sum("fee_per_kwh")

    @cached_property
    def path_fee_bps(self) -> tuple[int, ...]:
        return self._path_sum("fee_bps")

    @cached_property
    def path_loss_bps(self) -> tuple[int, ...]:
        return self._path_sum("loss_bps")

    def ancestors(self, i: int) -> list[int]:
        """``i`` and its ancestors up to the root."""
        out = [i]
        while self.zones[out[-1]].parent != ROOT:
            out.append(self.zones[out[-1]].parent)
        return out

    def crossed(self, a: int, b: int) -> tuple[list[int], list[int]]:
        """The boundaries a trade from a seller in ``a`` to a buyer in ``b`` crosses: ``a``'s side (zones whose
        boundary the energy leaves through) and ``b``'s side (zones it enters), each bottom-up."""
        up_a, up_b = self.ancestors(a), self.ancestors(b)
        common = set(up_a) & set(up_b)
        return [z for z in up_a if z not in common], [z for z in up_b if z not in common]

    def encode(self) -> bytes:
        """Canonical bytes: u32 count, then per zone u16 name length ‖ UTF-8 name ‖ u32 parent (0xFFFFFFFF = root)
        ‖ u64 fee_per_kwh ‖ u32 fee_bps ‖ u32 loss_bps ‖ u64 retail ‖ u64 feed_in, then i64 utility_energy ‖
        i64 utility_quote (little-endian)."""
        parts = [struct.pack("<I", len(self.zones))]
        for z in self.zones:
            name = z.name.encode()
            b = z.boundary
            parts.append(struct.pack("<H", len(name)) + name)
            parts.append(
                struct.pack(
                    "<IQIIQQ",
                    _NO_PARENT if z.parent == ROOT else z.parent,
                    b.fee_per_kwh,
                    b.fee_bps,
                    b.loss_bps,
                    z.retail,
                    z.feed_in,
                )
            )
        parts.append(struct.pack("<qq", self.utility_energy, self.utility_quote))
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> ZoneParams:
        """Inverse of ``encode`` (raises ``InvalidOrderError`` on malformed bytes or an invalid tree)."""
        try:
            (count,) = struct.unpack_from("<I", data, 0)
            off, zones = 4, []
            for _ in range(count):
                (ln,) = struct.unpack_from("<H", data, off)
                name = data[off + 2 : off + 2 + ln].decode()
                off += 2 + ln
                parent, fee, bps, loss, retail, feed_in = struct.unpack_from("<IQIIQQ", data, off)
                off += struct.calcsize("<IQIIQQ")
                zones.append(
                    Zone(name, ROOT if parent == _NO_PARENT else parent, Boundary(fee, bps, loss), retail, feed_in)
                )
            energy, quote = struct.unpack_from("<qq", data, off)
            off += 16
        except (struct.error, UnicodeDecodeError) as exc:
            raise InvalidOrderError(f"malformed zone parameters: {exc}") from None
        if off != len(data):
            raise InvalidOrderError("trailing bytes after the zone parameters")
        return cls(tuple(zones), energy, quote)
