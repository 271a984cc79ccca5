"""The market's records (pure): what the store port takes and returns, and what an epoch close plans.

Money and energy are integers (quote base units, Wh). Accounts are market account numbers; assets are
``central.market.escrow_seeds.Asset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from central.market.epochs import Epoch, EpochStatus
from central.market.escrow_seeds import Asset
from central.market.orders import OrderStatus


@dataclass(frozen=True)
class OrderView:
    id: int
    side: str
    qty: int
    price: int
    filled: int
    tif: str
    expires_at: datetime | None
    epoch_start: datetime
    locked: int
    status: str
    created_at: datetime


@dataclass(frozen=True)
class EpochSummary:
    start: datetime
    end: datetime
    status: str
    price: int | None
    volume: int
    curve_volume: int
    order_count: int
    trade_count: int
    order_set_hash: str | None
    fee_bps: int | None = None


@dataclass(frozen=True)
class DepthLevel:
    """One price level of the open book: total Wh still open and how many orders hold it."""

    side: str
    price: int
    qty: int
    orders: int


def asset_of(side: str) -> Asset:
    """The asset an order of ``side`` locks: energy for sells, quote for buys."""
    return Asset.ENERGY if side == "sell" else Asset.QUOTE


# ------------------------------------------------------------------------------------------------- placing


class PlaceOutcome(StrEnum):
    PLACED = "placed"
    NO_WALLET = "no_wallet"
    NO_ACCOUNT = "no_account"
    CLOSED = "closed"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True)
class OrderRequest:
    """A validated order, with the epoch it targets and the escrow it locks."""

    user_id: UUID
    side: str
    qty: int
    price: int
    tif: str
    expires_at: datetime | None
    epoch: Epoch
    lock: int

    @property
    def asset(self) -> Asset:
        return asset_of(self.side)


@dataclass(frozen=True)
class Placed:
    outcome: PlaceOutcome
    order: OrderView | None = None


@dataclass(frozen=True)
class CancelTarget:
    """What deciding a cancellation needs, read under the epoch's shared lock and the order's row lock."""

    status: str
    side: str
    locked: int
    epoch_start: datetime
    #: The epoch the order was in when first looked up (its lock was taken for that epoch).
    seen_epoch: datetime
    epoch_status: str | None


# ------------------------------------------------------------------------------------------------- closing


@dataclass(frozen=True)
class BookOrder:
    """An open order of the closing epoch as the store holds it (``qty`` is what is still unfilled)."""

    id: int
    account: int
    side: str
    qty: int
    price: int
    locked: int
    tif: str
    expires_at: datetime | None
    #: The owner's linked wallet (None: no wallet, the order cannot trade).
    wallet: str | None
    #: The serial of the owner's meter that places it in a grid zone (None: the default zone).
    meter: str | None = None


@dataclass(frozen=True)
class UtilityState:
    """The utility's market account as the close reads it (under its escrow rows' locks): its wallet and what it
    has available to sell (Wh) and to pay (quote) — its capacity for the epoch."""

    account: int
    wallet: str
    energy: int
    quote: int


@dataclass(frozen=True)
class EscrowMove:
    """An amount of one account's escrow asset (the direction is given by the list it is in)."""

    account: int
    asset: Asset
    amount: int


@dataclass(frozen=True)
class EpochEntry:
    """One order of the set an epoch cleared (published: anyone can recompute the hash and the trades)."""

    order_id: int
    account: int
    side: int
    qty: int
    price: int
    filled: int
    netted: int
    zone: int = 0


@dataclass(frozen=True)
class OrderChange:
    id: int
    #: Wh filled this epoch (added to the order's ``filled``).
    filled: int
    locked: int
    status: OrderStatus
    epoch_start: datetime


@dataclass(frozen=True)
class TradeIntent:
    """A trade to record, with its destination wallets fixed at the close; each becomes one settlement intent."""

    seq: int
    #: None: the utility's side of a utility trade (it places no orders).
    buy_order: int | None
    sell_order: int | None
    buyer: int
    seller: int
    buyer_wallet: str
    seller_wallet: str
    qty: int
    price: int
    value: int
    fee: int
    #: Zonal clearing (docs/decisions/0017-zonal-clearing.md): the market (zone) that cleared it, the Wh the buyer
    #: receives (``qty`` is what the seller sends; the difference is the loss), the grid fees each side pays and the
    #: grid operator's wallet that receives them (and the loss).
    zone: int = 0
    delivered: int | None = None
    grid_fee_seller: int = 0
    grid_fee_buyer: int = 0
    grid_operator: str | None = None

    @property
    def buyer_pays(self) -> int:
        return self.value + self.grid_fee_buyer


@dataclass(frozen=True)
class ZoneOutcome:
    """One zone's market in an epoch: its uniform price (None: it did not cross), m-Wh traded there, the grid
    fees and losses of its trades, and what its meters bought from / sold to the utility."""

    zone: int
    name: str
    price: int | None
    volume: int
    grid_fees: int
    losses: int
    utility_bought: int = 0
    utility_sold: int = 0


@dataclass(frozen=True)
class ClosePlan:
    """Everything closing one epoch changes, decided from its order book alone (``central.market.plan``)."""

    epoch: Epoch
    next: Epoch
    fee_bps: int
    entries: tuple[EpochEntry, ...]
    changes: tuple[OrderChange, ...]
    #: Locks released back to available (refunds: price improvement, unfilled and expired orders).
    releases: tuple[EscrowMove, ...]
    #: Locks that stay locked until settlement spends them (buyers' quote value, sellers' Wh).
    owed: tuple[EscrowMove, ...]
    trades: tuple[TradeIntent, ...]
    status: EpochStatus
    price: int | None
    marginal_bid: int | None
    marginal_ask: int | None
    curve_volume: int
    volume: int
    order_set_hash: bytes
    #: Zonal clearing only: the epoch's zone parameters (``ZoneParams.encode()``) and each zone's outcome.
    zone_params: bytes | None = None
    zones: tuple[ZoneOutcome, ...] = ()
    #: Available escrow moved to locked until settlement spends it: what the utility owes its trades.
    reserved: tuple[EscrowMove, ...] = ()

    @property
    def order_count(self) -> int:
        return len(self.entries)

    def summary(self) -> EpochSummary:
        return EpochSummary(
            self.epoch.start,
            self.epoch.end,
            self.status.value,
            self.price,
            self.volume,
            self.curve_volume,
            self.order_count,
            len(self.trades),
            self.order_set_hash.hex(),
            self.fee_bps,
        )


# ------------------------------------------------------------------------------------------------- escrow transfers


@dataclass(frozen=True)
class TransferView:
    id: UUID
    asset: str
    kind: str
    amount: int
    wallet: str
    status: str
    signature: str | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class DepositRequest:
    id: UUID
    asset: str
    amount: int
    #: base64 of the unsigned v0 transaction; the wallet signs it and submits it back.
    transaction: str
    last_valid_block_height: int


@dataclass(frozen=True)
class EscrowRow:
    """One escrow balance as the database holds it (on chain the escrow token account at ``address`` should hold
    ``available + locked``)."""

    account: int
    asset: str
    address: str
    available: int
    locked: int


@dataclass(frozen=True)
class TransferRecord:
    """A transfer to record: unsigned (a deposit awaiting the wallet, ``built``) or signed (a withdrawal,
    ``submitted``)."""

    id: UUID
    account: int
    asset: Asset
    kind: str
    amount: int
    wallet: str
    #: The exact v0 message bytes built.
    message: bytes
    last_valid_block_height: int
    signature: str | None


@dataclass(frozen=True)
class TransferState:
    id: UUID
    status: str
    signature: str | None
    last_valid_block_height: int


@dataclass(frozen=True)
class DepositToSign:
    """A recorded deposit as ``submit_deposit`` checks it (under its row lock)."""

    status: str
    message: bytes
    wallet: str


# ------------------------------------------------------------------------------------------------- events


def order_event(account: int, o: OrderView) -> dict[str, Any]:
    return {
        "type": "order",
        "account": account,
        "order": {
            "id": o.id,
            "side": o.side,
            "qty": o.qty,
            "price": o.price,
            "filled": o.filled,
            "status": o.status,
            "epoch_start": o.epoch_start.isoformat(),
        },
    }


def epoch_event(e: EpochSummary) -> dict[str, Any]:
    return {
        "type": "epoch",
        "epoch": {
            "start": e.start.isoformat(),
            "end": e.end.isoformat(),
            "status": e.status,
            "price": e.price,
            "volume": e.volume,
            "trade_count": e.trade_count,
            "order_set_hash": e.order_set_hash,
        },
    }


def trades_event(trades: list[tuple[int, int, int, str | None]]) -> dict[str, Any]:
    """Trades just settled: ``(id, qty, price, signature)`` each (the first 50 are listed)."""
    return {
        "type": "trades",
        "count": len(trades),
        "trades": [{"id": i, "qty": q, "price": p, "signature": s} for i, q, p, s in trades[:50]],
    }


def settled_event(start: datetime) -> dict[str, Any]:
    return {"type": "epoch", "epoch": {"start": start.isoformat(), "status": "settled"}}
