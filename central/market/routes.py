"""HTTP routes of the market: public book/epochs/trades, owners' orders, balances, deposits and withdrawals, and the
admin reconciliation. Market errors map to statuses through ``ERRORS`` (the route adapter applies it); no ledger in
this process is a 503."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import numpy as np

from central.errors import require
from central.http import OWNERS, PUBLIC, Call, Role, RouteTable, meta, roles
from central.http.errors import ErrorMap, ErrorRule, not_found
from central.market.book import EpochSummary, MarketBook, OrderView
from central.market.clearing import MAX_PRICE, MAX_QTY_WH, order_set_hash
from central.market.config import ZonesConfig
from central.market.context import Market
from central.market.errors import (
    ConflictError,
    EpochClosedError,
    InsufficientEscrowError,
    InvalidOrderError,
    InvalidTransactionError,
    MarketError,
    NotFoundError,
    TooManyWaitingError,
)
from central.market.escrow import MAX_AMOUNT, DepositRequest, Escrow, TransferView
from central.market.reconcile import Mismatch, reconcile
from central.market.zonal import zonal_order_set_hash
from central.market.zones import ZoneParams

#: The market's exceptions over HTTP: bad input 400, not found 404, epoch closed or state conflict 409, not enough
#: escrow 422 (anything else the market refuses: 400).
ERRORS: ErrorMap = {
    InvalidOrderError: ErrorRule(400, "invalid_request"),
    InvalidTransactionError: ErrorRule(400, "invalid_request"),
    NotFoundError: ErrorRule(404, "not_found"),
    EpochClosedError: ErrorRule(409, "epoch_closed"),
    ConflictError: ErrorRule(409, "conflict"),
    TooManyWaitingError: ErrorRule(409, "too_many_waiting_deposits"),
    InsufficientEscrowError: ErrorRule(422, "insufficient_escrow"),
    MarketError: ErrorRule(400, "invalid_request"),
}
routes = RouteTable(tag="market", error_map=ERRORS)
ADMINS = roles(Role.ADMIN)


def _market(call: Call[Any, Any]) -> Market:
    return require(call.services.market.market)


def _escrow(call: Call[Any, Any]) -> Escrow:
    return _market(call).escrow


# --------------------------------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Level:
    price: int
    qty: int
    orders: int


@dataclass(frozen=True)
class BookOut:
    epoch_start: datetime
    epoch_end: datetime
    bids: list[Level]
    asks: list[Level]


@dataclass(frozen=True)
class EpochOrder:
    order_id: int
    account: int
    side: int
    qty: int
    price: int
    zone: int = field(default=0, metadata=meta(description="index of the order's grid zone in zone_params"))


@dataclass(frozen=True)
class EpochOrdersOut:
    order_set_hash: str
    encoding: str
    orders: list[EpochOrder]
    zone_params: str | None = field(
        default=None,
        metadata=meta(description="hex of the epoch's zone parameters (ZoneParams.encode(), central/market/zones.py); "
                      "null for a single-zone epoch"),
    )


@dataclass(frozen=True)
class ZoneOut:
    """A grid zone and, for the hour asked, what crossing its boundary costs and the utility's tariffs there."""

    name: str
    parent: str | None
    fee_per_kwh: int = field(metadata=meta(description="quote base units per kWh crossing the zone's boundary"))
    fee_bps: int = field(metadata=meta(description="bps of the trade's value crossing the boundary"))
    loss_bps: int = field(metadata=meta(description="bps of the energy lost crossing the boundary"))
    retail: int = field(metadata=meta(description="the utility sells here at this price per kWh (0: not offered)"))
    feed_in: int = field(metadata=meta(description="the utility buys here at this price per kWh (0: not offered)"))


@dataclass(frozen=True)
class ZonesOut:
    at: datetime
    grid_operator: str | None
    zones: list[ZoneOut]


@dataclass(frozen=True)
class MeterZoneOut:
    serial: str
    zone: str


@dataclass(frozen=True)
class EpochZoneOut:
    """One zone's market in a cleared epoch (docs/decisions/0017-zonal-clearing.md)."""

    zone: int
    name: str
    price: int | None = field(metadata=meta(description="the zone market's uniform price; null: it did not cross"))
    volume: int = field(metadata=meta(description="Wh traded in the zone's market"))
    grid_fees: int = field(metadata=meta(description="grid fees of the trades it cleared (quote base units)"))
    losses: int = field(metadata=meta(description="Wh lost crossing boundaries in the trades it cleared"))
    utility_bought: int = field(metadata=meta(description="Wh its meters bought from the utility"))
    utility_sold: int = field(metadata=meta(description="Wh its meters sold to the utility"))


@dataclass(frozen=True)
class ZonesQuery:
    at: datetime | None = None


@dataclass(frozen=True)
class TradeOut:
    id: int
    epoch_start: datetime
    qty: int
    price: int
    value: int
    status: str
    signature: str | None
    settled_at: datetime | None


@dataclass(frozen=True)
class FillOut:
    id: int
    epoch_start: datetime
    side: str
    order_id: int | None = field(metadata=meta(description="your order (null only for the utility's own account)"))
    qty: int = field(metadata=meta(description="Wh you received (buy) or sent (sell)"))
    price: int
    value: int
    fee: int
    status: str
    signature: str | None
    settled_at: datetime | None
    zone: int = field(default=0, metadata=meta(description="index of the zone whose market cleared it"))
    grid_fee: int = field(default=0, metadata=meta(description="grid fee of your side (quote base units)"))
    loss: int = field(default=0, metadata=meta(description="Wh lost crossing zones (sent minus delivered)"))
    utility: bool = field(default=False, metadata=meta(description="traded with the utility (outside option)"))


@dataclass(frozen=True)
class OrderIn:
    side: Literal["buy", "sell"]
    qty: int = field(metadata=meta(minimum=1, maximum=MAX_QTY_WH, description="Wh"))
    price: int = field(metadata=meta(minimum=1, maximum=MAX_PRICE, description="quote base units per kWh"))
    tif: Literal["epoch", "gtc"] = "epoch"
    expires_at: datetime | None = None


@dataclass(frozen=True)
class OrdersQuery:
    open: bool = False
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))


@dataclass(frozen=True)
class LimitQuery:
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))


@dataclass(frozen=True)
class BalanceOut:
    asset: str
    address: str
    available: int
    locked: int


@dataclass(frozen=True)
class TransferIn:
    asset: Literal["energy", "quote"]
    amount: int = field(metadata=meta(minimum=1, maximum=MAX_AMOUNT, description="token base units"))


@dataclass(frozen=True)
class DepositOut:
    id: UUID
    asset: str
    amount: int
    transaction: str = field(metadata=meta(description="base64 unsigned v0 transaction for the wallet to sign"))
    last_valid_block_height: int = 0


@dataclass(frozen=True)
class SignedIn:
    transaction: str = field(metadata=meta(min_length=1, max_length=4096, description="base64, wallet-signed"))


@dataclass(frozen=True)
class ReconcileOut:
    checked: int
    pending: int
    mismatches: list[Mismatch]


def _deposit(d: DepositRequest) -> DepositOut:
    return DepositOut(d.id, d.asset, d.amount, d.transaction, d.last_valid_block_height)


def _start(call: Call[Any, Any]) -> datetime:
    try:
        return datetime.fromisoformat(call.path("start"))
    except ValueError:
        raise not_found("no such epoch") from None


async def _cleared_epoch(call: Call[Any, Any]) -> tuple[MarketBook, EpochSummary]:
    """The market book and the cleared epoch named by the path's ``start``; 404 when there is no such epoch or it
    has not cleared yet."""
    book = _market(call).book
    e = await book.epoch(_start(call))
    if e is None or e.order_set_hash is None:
        raise not_found("no such cleared epoch")
    return book, e


# --------------------------------------------------------------------------------------------------- public


@routes.get("/api/v1/market/book", access=PUBLIC, response=BookOut, summary="Order book depth of the open epoch")
async def get_book(call: Call[None, None]) -> BookOut:
    d = await _market(call).book.depth()
    return BookOut(d["epoch_start"], d["epoch_end"], [Level(**x) for x in d["bids"]], [Level(**x) for x in d["asks"]])


@routes.get(
    "/api/v1/market/epochs",
    access=PUBLIC,
    query=LimitQuery,
    response=list[EpochSummary],
    summary="Past and current epochs with clearing price and volume",
)
async def list_epochs(call: Call[None, LimitQuery]) -> list[EpochSummary]:
    return await _market(call).book.epochs(call.query.limit)


@routes.get("/api/v1/market/epochs/{start}", access=PUBLIC, response=EpochSummary, errors=(404,), summary="One epoch")
async def get_epoch(call: Call[None, None]) -> EpochSummary:
    e = await _market(call).book.epoch(_start(call))
    if e is None:
        raise not_found("no such epoch")
    return e


@routes.get(
    "/api/v1/market/epochs/{start}/orders",
    access=PUBLIC,
    response=EpochOrdersOut,
    errors=(404,),
    summary="The exact order set an epoch cleared (recompute its hash and trades)",
)
async def get_epoch_orders(call: Call[None, None]) -> EpochOrdersOut:
    book, e = await _cleared_epoch(call)
    orders = await book.epoch_order_set(e.start)
    params, zones, _ = await book.pg.epoch_zoning(e.start)
    if params is None:
        return EpochOrdersOut(
            order_set_hash(orders).hex(),
            "GTX-ORDERSET-V1 (central/market/clearing.py)",
            [EpochOrder(o.order_id, o.user, int(o.side), o.qty, o.price) for o in orders.orders()],
        )
    tree = ZoneParams.decode(params)
    return EpochOrdersOut(
        zonal_order_set_hash(orders, np.array(zones, dtype=np.int64), tree).hex(),
        "GTX-ORDERSET-Z1 (central/market/zonal.py)",
        [
            EpochOrder(o.order_id, o.user, int(o.side), o.qty, o.price, z)
            for o, z in zip(orders.orders(), zones, strict=True)
        ],
        params.hex(),
    )


@routes.get(
    "/api/v1/market/epochs/{start}/zones",
    access=PUBLIC,
    response=list[EpochZoneOut],
    errors=(404,),
    summary="Each grid zone's market in a cleared epoch: price, volume, grid fees, losses, utility",
)
async def get_epoch_zones(call: Call[None, None]) -> list[EpochZoneOut]:
    book, e = await _cleared_epoch(call)
    _, _, outcomes = await book.pg.epoch_zoning(e.start)
    return [EpochZoneOut(**vars(z)) for z in outcomes]


@routes.get(
    "/api/v1/market/zones",
    access=PUBLIC,
    query=ZonesQuery,
    response=ZonesOut,
    summary="The grid zone tree with the fees, losses and utility tariffs in force at a time (default: now)",
)
async def list_zones(call: Call[None, ZonesQuery]) -> ZonesOut:
    book = _market(call).book
    zoning = book.zoning or ZonesConfig()
    at = call.query.at or book.now()
    tree = zoning.params_at(at)
    names = [z.name for z in tree.zones]
    return ZonesOut(
        at,
        zoning.grid_operator or None,
        [
            ZoneOut(z.name, None if z.parent < 0 else names[z.parent], z.boundary.fee_per_kwh, z.boundary.fee_bps,
                    z.boundary.loss_bps, z.retail, z.feed_in)
            for z in tree.zones
        ],
    )


@routes.get(
    "/api/v1/market/meters/{serial}/zone",
    access=PUBLIC,
    response=MeterZoneOut,
    errors=(404,),
    summary="The grid zone a meter belongs to (its owner's orders clear there)",
)
async def get_meter_zone(call: Call[None, None]) -> MeterZoneOut:
    book = _market(call).book
    serial = call.path("serial")
    if not await book.pg.meter_exists(serial):
        raise not_found("no such meter")
    zoning = book.zoning or ZonesConfig()
    return MeterZoneOut(serial, zoning.names[zoning.zone_of_meter(serial)])


@routes.get("/api/v1/market/trades", access=PUBLIC, query=LimitQuery, response=list[TradeOut], summary="Recent trades")
async def list_trades(call: Call[None, LimitQuery]) -> list[TradeOut]:
    rows = await _market(call).book.recent_trades(call.query.limit)
    return [TradeOut(**{k: r[k] for k in TradeOut.__dataclass_fields__}) for r in rows]


# --------------------------------------------------------------------------------------------------- owners


@routes.post(
    "/api/v1/market/orders",
    access=OWNERS,
    body=OrderIn,
    response=OrderView,
    status=201,
    errors=(400, 409, 422),
    summary="Place an order (locks escrow)",
    idempotent=True,
)
async def place_order(call: Call[OrderIn, None]) -> OrderView:
    b = call.body
    return await _market(call).book.place(call.user.user_id, b.side, b.qty, b.price, b.tif, b.expires_at)


@routes.get("/api/v1/market/orders", access=OWNERS, query=OrdersQuery, response=list[OrderView], summary="Your orders")
async def list_orders(call: Call[None, OrdersQuery]) -> list[OrderView]:
    q = call.query
    return await _market(call).book.orders_of(call.user.user_id, open_only=q.open, limit=q.limit)


@routes.delete(
    "/api/v1/market/orders/{order_id}",
    access=OWNERS,
    response=OrderView,
    errors=(404, 409),
    summary="Cancel an open order of the open epoch (unlocks escrow)",
    idempotent=True,
)
async def cancel_order(call: Call[None, None]) -> OrderView:
    try:
        order_id = int(call.path("order_id"))
    except ValueError:
        raise not_found("no such order") from None
    return await _market(call).book.cancel(call.user.user_id, order_id)


@routes.get("/api/v1/market/fills", access=OWNERS, query=LimitQuery, response=list[FillOut], summary="Your trades")
async def list_fills(call: Call[None, LimitQuery]) -> list[FillOut]:
    rows = await _market(call).book.fills_of(call.user.user_id, call.query.limit)
    return [FillOut(**r) for r in rows]


@routes.get(
    "/api/v1/market/balances",
    access=OWNERS,
    response=list[BalanceOut],
    errors=(503,),
    summary="Your escrow balances (available and locked, per asset)",
)
async def get_balances(call: Call[None, None]) -> list[BalanceOut]:
    b = await _escrow(call).balances(call.user.user_id)
    return [
        BalanceOut(asset, str(v["address"]), int(v["available"]), int(v["locked"])) for asset, v in sorted(b.items())
    ]


@routes.post(
    "/api/v1/market/deposits",
    access=OWNERS,
    body=TransferIn,
    response=DepositOut,
    status=201,
    errors=(400, 409, 503),
    summary="Build a deposit transaction for your wallet to sign",
)
async def request_deposit(call: Call[TransferIn, None]) -> DepositOut:
    b = call.body
    return _deposit(await _escrow(call).request_deposit(call.user.user_id, b.asset, b.amount))


@routes.post(
    "/api/v1/market/deposits/{transfer_id}/submit",
    access=OWNERS,
    body=SignedIn,
    response=TransferView,
    errors=(400, 404, 409, 503),
    summary="Submit the wallet-signed deposit; escrow is credited on confirmation",
)
async def submit_deposit(call: Call[SignedIn, None]) -> TransferView:
    tid = call.path_uuid("transfer_id")
    return await _escrow(call).submit_deposit(call.user.user_id, tid, call.body.transaction)


@routes.post(
    "/api/v1/market/withdrawals",
    access=OWNERS,
    body=TransferIn,
    response=TransferView,
    status=201,
    errors=(400, 409, 422, 503),
    summary="Withdraw available escrow to your wallet",
    idempotent=True,
)
async def withdraw(call: Call[TransferIn, None]) -> TransferView:
    b = call.body
    return await _escrow(call).withdraw(call.user.user_id, b.asset, b.amount)


# --------------------------------------------------------------------------------------------------- admin


@routes.get(
    "/api/v1/admin/market/reconciliation",
    access=ADMINS,
    response=ReconcileOut,
    errors=(503,),
    summary="Check on-chain escrow = available + locked for every user and mint",
)
async def get_reconciliation(call: Call[None, None]) -> ReconcileOut:
    m = _market(call)
    r = await reconcile(m.book.pool, m.platform)
    return ReconcileOut(r.checked, r.pending, r.mismatches)
