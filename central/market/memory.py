"""In-memory fake of :class:`central.market.port.MarketStore` for unit tests (same semantics as PostgreSQL).

Every method runs without awaiting between its reads and writes, so each is atomic on the event loop (as the
PostgreSQL adapter's transactions are under their locks); one close at a time as there. Events that PostgreSQL
would send through LISTEN/NOTIFY are appended to ``events``; settlement intents to ``intents``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from central.market.epochs import Epoch, EpochStatus
from central.market.errors import ConflictError, InsufficientEscrowError, NotFoundError
from central.market.escrow_seeds import Asset
from central.market.model import (
    BookOrder,
    CancelTarget,
    ClosePlan,
    DepositToSign,
    DepthLevel,
    EpochSummary,
    OrderRequest,
    OrderView,
    Placed,
    PlaceOutcome,
    TransferRecord,
    TransferState,
    TransferView,
    UtilityState,
    asset_of,
    epoch_event,
    order_event,
    settled_event,
    trades_event,
)
from central.market.orders import OrderStatus
from central.market.plan import (
    OPEN_TRANSFERS,
    check_cancel,
    settlement_payload,
    spent_at_settlement,
    trade_key,
    transfer_moves,
)
from central.market.port import OrderSetRow, Planner


@dataclass
class Balance:
    available: int = 0
    locked: int = 0


@dataclass
class OrderRow:
    account: int
    view: OrderView


@dataclass
class TradeRow:
    id: int
    epoch_start: datetime
    buy_order: int | None
    sell_order: int | None
    buyer: int
    seller: int
    qty: int
    price: int
    value: int
    fee: int
    created_at: datetime
    status: str = "pending"
    signature: str | None = None
    settled_at: datetime | None = None
    #: Zonal trades (``qty`` is what the seller sends): what the buyer receives and each side's grid fee.
    delivered: int | None = None
    grid_fee_seller: int = 0
    grid_fee_buyer: int = 0
    zone: int = 0


#: The account ``paid`` books fees to.
TREASURY = 0
#: The account ``paid`` books grid fees and losses to.
GRID_OPERATOR = -1


@dataclass
class TransferRow:
    rec: TransferRecord
    status: str
    signature: str | None
    created_at: datetime
    error: str | None = None


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class InMemoryMarketStore:
    #: Timestamps of rows (created_at); the clock of the market itself is the service's.
    wall: Callable[[], datetime] = _wall
    wallets: dict[UUID, str] = field(default_factory=dict)
    accounts: dict[UUID, int] = field(default_factory=dict)
    balances: dict[tuple[int, Asset], Balance] = field(default_factory=dict)
    epoch_rows: dict[datetime, EpochSummary] = field(default_factory=dict)
    orders: dict[int, OrderRow] = field(default_factory=dict)
    cleared_sets: dict[datetime, list[OrderSetRow]] = field(default_factory=dict)
    trades: list[TradeRow] = field(default_factory=list)
    intents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: What settlement paid out of escrow, by receiving account (``TREASURY``: fees) and asset.
    paid: dict[tuple[int, Asset], int] = field(default_factory=dict)
    transfers: dict[UUID, TransferRow] = field(default_factory=dict)
    opened: set[tuple[int, Asset]] = field(default_factory=set)
    #: Settlement intents the (absent) chain outbox confirmed: key -> transaction signature.
    confirmed: dict[str, str] = field(default_factory=dict)
    _closing: asyncio.Lock = field(default_factory=asyncio.Lock)

    # ------------------------------------------------------------------------------------------- test set-up

    def link_wallet(self, user_id: UUID, address: str) -> None:
        self.wallets[user_id] = address

    def credit(self, account: int, asset: Asset, amount: int) -> None:
        """Escrow ``amount`` as available (as a confirmed deposit would)."""
        self.balances[(account, asset)].available += amount

    def confirm_settlements(self, signature: str = "sig") -> None:
        """Mark every settlement intent confirmed, as the chain outbox does once its transaction is confirmed
        (test hook: the outbox is not behind this port). ``apply_settled`` then records the trades."""
        for key, _ in self.intents:
            self.confirmed.setdefault(key, signature)

    def balance(self, account: int, asset: Asset) -> tuple[int, int]:
        b = self.balances[(account, asset)]
        return b.available, b.locked

    # ---------------------------------------------------------------------------------------------- accounts

    def _account(self, user_id: UUID) -> int:
        acc = self.accounts.get(user_id)
        if acc is None:
            acc = self.accounts[user_id] = len(self.accounts) + 1
            for a in Asset:
                self.balances[(acc, a)] = Balance()
        return acc

    async def account_of(self, user_id: UUID) -> int:
        return self._account(user_id)

    async def existing_account(self, user_id: UUID) -> int | None:
        return self.accounts.get(user_id)

    # ---------------------------------------------------------------------------------------------- orders

    def _ensure_epoch(self, epoch: Epoch) -> EpochSummary:
        row = self.epoch_rows.get(epoch.start)
        if row is None:
            row = self.epoch_rows[epoch.start] = EpochSummary(
                epoch.start, epoch.end, EpochStatus.OPEN.value, None, 0, 0, 0, 0, None, None
            )
        return row

    async def place(self, req: OrderRequest) -> Placed:
        if req.user_id not in self.wallets:
            return Placed(PlaceOutcome.NO_WALLET)
        acc = self._account(req.user_id)  # PostgreSQL answers no_account first; the adapter then creates it
        if self._ensure_epoch(req.epoch).status != EpochStatus.OPEN:
            return Placed(PlaceOutcome.CLOSED)
        b = self.balances[(acc, req.asset)]
        if b.available < req.lock:
            return Placed(PlaceOutcome.INSUFFICIENT)
        b.available -= req.lock
        b.locked += req.lock
        oid = len(self.orders) + 1
        view = OrderView(
            oid,
            req.side,
            req.qty,
            req.price,
            0,
            req.tif,
            req.expires_at,
            req.epoch.start,
            req.lock,
            OrderStatus.OPEN.value,
            self.wall(),
        )
        self.orders[oid] = OrderRow(acc, view)
        self.events.append(order_event(acc, view))
        return Placed(PlaceOutcome.PLACED, view)

    async def cancel(self, user_id: UUID, order_id: int) -> OrderView:
        acc = self._account(user_id)
        row = self.orders.get(order_id)
        if row is None or row.account != acc:
            raise NotFoundError("no such order")
        o = row.view
        epoch = self.epoch_rows.get(o.epoch_start)
        check_cancel(
            CancelTarget(o.status, o.side, o.locked, o.epoch_start, o.epoch_start, epoch.status if epoch else None)
        )
        b = self.balances[(acc, asset_of(o.side))]
        b.available += o.locked
        b.locked -= o.locked
        row.view = replace(o, status=OrderStatus.CANCELLED.value, locked=0)
        self.events.append(order_event(acc, row.view))
        return row.view

    async def orders_of(self, account: int, *, open_only: bool, limit: int) -> list[OrderView]:
        rows = [
            r.view
            for r in self.orders.values()
            if r.account == account and (not open_only or r.view.status == OrderStatus.OPEN)
        ]
        return sorted(rows, key=lambda v: -v.id)[:limit]

    # ---------------------------------------------------------------------------------------------- public

    async def depth(self, epoch_start: datetime) -> list[DepthLevel]:
        levels: dict[tuple[str, int], tuple[int, int]] = {}
        for r in self.orders.values():
            o = r.view
            if o.status == OrderStatus.OPEN and o.epoch_start == epoch_start:
                qty, n = levels.get((o.side, o.price), (0, 0))
                levels[(o.side, o.price)] = (qty + o.qty - o.filled, n + 1)
        return [DepthLevel(side, price, qty, n) for (side, price), (qty, n) in levels.items()]

    async def epochs(self, limit: int) -> list[EpochSummary]:
        return sorted(self.epoch_rows.values(), key=lambda e: e.start, reverse=True)[:limit]

    async def epoch(self, start: datetime) -> EpochSummary | None:
        return self.epoch_rows.get(start)

    async def recent_trades(self, limit: int) -> list[dict[str, Any]]:
        keys = ("id", "epoch_start", "qty", "price", "value", "status", "signature", "settled_at", "created_at")
        return [{k: getattr(t, k) for k in keys} for t in reversed(self.trades[-limit:] if limit else [])]

    async def fills_of(self, account: int, limit: int) -> list[dict[str, Any]]:
        out = []
        for t in reversed(self.trades):
            if account not in (t.buyer, t.seller):
                continue
            buy = t.buyer == account
            got = t.qty if t.delivered is None else t.delivered
            out.append(
                {
                    "id": t.id,
                    "epoch_start": t.epoch_start,
                    "side": "buy" if buy else "sell",
                    "order_id": t.buy_order if buy else t.sell_order,
                    "qty": got if buy else t.qty,
                    "price": t.price,
                    "value": t.value,
                    "fee": 0 if buy else t.fee,
                    "status": t.status,
                    "signature": t.signature,
                    "settled_at": t.settled_at,
                    "zone": t.zone,
                    "grid_fee": t.grid_fee_buyer if buy else t.grid_fee_seller,
                    "loss": t.qty - got,
                    "utility": t.buy_order is None or t.sell_order is None,
                }
            )
        return out[:limit]

    async def epoch_order_set(self, start: datetime) -> list[OrderSetRow]:
        return list(self.cleared_sets.get(start, []))

    # ---------------------------------------------------------------------------------------------- escrow

    def _wallet(self, user_id: UUID) -> str:
        w = self.wallets.get(user_id)
        if w is None:
            raise ConflictError("link a wallet first")
        return w

    async def wallet_and_account(self, user_id: UUID) -> tuple[str, int]:
        return self._wallet(user_id), self._account(user_id)

    async def escrow_opened(self, account: int, asset: Asset) -> bool:
        return (account, asset) in self.opened

    async def mark_opened(self, account: int, asset: Asset) -> None:
        self.opened.add((account, asset))

    async def user_escrow_balances(self, user_id: UUID) -> dict[str, dict[str, int | str]]:
        account = self.accounts.get(user_id)
        return {} if account is None else await self.escrow_balances(account)

    async def escrow_balances(self, account: int) -> dict[str, dict[str, int | str]]:
        out: dict[str, dict[str, int | str]] = {}
        for a in Asset:
            b = self.balances[(account, a)]
            out[a.value] = {"address": f"escrow:{a.value}:{account}", "available": b.available, "locked": b.locked}
        return out

    def _insert(self, rec: TransferRecord) -> None:
        status = "built" if rec.signature is None else "submitted"
        self.transfers[rec.id] = TransferRow(rec, status, rec.signature, self.wall())

    async def record_transfer(self, rec: TransferRecord) -> None:
        self._insert(rec)

    async def waiting_deposits(self, account: int) -> int:
        return sum(1 for t in self.transfers.values()
                   if t.rec.account == account and t.rec.kind == "deposit" and t.status == "built")

    async def start_withdrawal(
        self, user_id: UUID, asset: Asset, amount: int, build: Callable[[int, str], Awaitable[TransferRecord]]
    ) -> TransferRecord:
        wallet, account = self._wallet(user_id), self._account(user_id)
        b = self.balances[(account, asset)]
        if b.available < amount:
            raise InsufficientEscrowError(f"not enough available {asset.value} in escrow")
        b.available -= amount
        b.locked += amount
        try:
            rec = await build(account, wallet)
        except BaseException:  # the transaction rolls back
            b.available += amount
            b.locked -= amount
            raise
        self._insert(rec)
        return rec

    async def submit_deposit(self, account: int, transfer_id: UUID, cosign: Callable[[DepositToSign], str]) -> None:
        row = self.transfers.get(transfer_id)
        if row is None or row.rec.account != account or row.rec.kind != "deposit":
            raise NotFoundError("no such deposit")
        signature = cosign(DepositToSign(row.status, row.rec.message, row.rec.wallet))
        row.status, row.signature = "submitted", signature

    async def transfer_state(self, transfer_id: UUID) -> TransferState:
        row = self.transfers[transfer_id]
        return TransferState(transfer_id, row.status, row.signature, row.rec.last_valid_block_height)

    async def transfer_view(self, transfer_id: UUID) -> TransferView:
        row = self.transfers[transfer_id]
        r = row.rec
        return TransferView(
            r.id, r.asset.value, r.kind, r.amount, r.wallet, row.status, row.signature, row.error, row.created_at
        )

    async def open_transfers(self, only: UUID | None) -> list[TransferState]:
        return [
            await self.transfer_state(tid)
            for tid, row in self.transfers.items()
            if row.status in OPEN_TRANSFERS and only in (None, tid)
        ]

    async def finish_transfer(self, transfer_id: UUID, status: str, error: str | None) -> None:
        row = self.transfers[transfer_id]
        moves = transfer_moves(row.rec.kind, row.status, status, row.rec.amount)
        if moves is None:
            return
        was = row.status
        row.status, row.error = status, error
        if was == "built":
            return
        b = self.balances[(row.rec.account, row.rec.asset)]
        b.available += moves[0]
        b.locked += moves[1]
        self.events.append({"type": "account", "account": row.rec.account})

    # ---------------------------------------------------------------------------------------------- settlement

    async def apply_settled(self) -> int:
        done = [t for t in self.trades if t.status == "pending" and trade_key(t.id) in self.confirmed]
        for m in spent_at_settlement([(t.buyer, t.seller, t.qty, t.value + t.grid_fee_buyer) for t in done]):
            self.balances[(m.account, m.asset)].locked -= m.amount
        now = self.wall()
        for t in done:  # what the settlement transaction moved out of escrow
            got = t.qty if t.delivered is None else t.delivered
            grid = t.grid_fee_seller + t.grid_fee_buyer
            for key, amount in (
                ((t.seller, Asset.QUOTE), t.value - t.fee - t.grid_fee_seller),
                ((TREASURY, Asset.QUOTE), t.fee),
                ((t.buyer, Asset.ENERGY), got),
                ((GRID_OPERATOR, Asset.QUOTE), grid),
                ((GRID_OPERATOR, Asset.ENERGY), t.qty - got),
            ):
                if amount:
                    self.paid[key] = self.paid.get(key, 0) + amount
            t.status, t.signature, t.settled_at = "settled", self.confirmed[trade_key(t.id)], now
        if done:
            self.events.append(trades_event([(t.id, t.qty, t.price, t.signature) for t in done]))
        for start in sorted({t.epoch_start for t in done}):
            e = self.epoch_rows[start]
            if e.status == EpochStatus.CLEARED and all(
                t.status == "settled" for t in self.trades if t.epoch_start == start
            ):
                self.epoch_rows[start] = replace(e, status=EpochStatus.SETTLED.value)
                self.events.append(settled_event(start))
        return len(done)

    async def pending_settlements(self, limit: int) -> list[dict[str, Any]]:
        return [p for k, p in self.intents if k not in self.confirmed][:limit]

    async def open_settlements(self) -> int:
        return sum(k not in self.confirmed for k, _ in self.intents)

    # ---------------------------------------------------------------------------------------------- closing

    async def close_next_due(
        self, ended: Epoch, planner: Planner, utility: UUID | None = None, *, zoned: bool = False  # noqa: ARG002
    ) -> EpochSummary | None:
        if self._closing.locked():
            return None
        async with self._closing:
            due = [e.start for e in self.epoch_rows.values() if e.status in ("open", "closed") and e.end <= ended.end]
            if due:
                start = min(due)
            elif self._ensure_epoch(ended).status in (EpochStatus.OPEN, EpochStatus.CLOSED):
                start = ended.start  # the last ended epoch, before its first order (refused from now on)
            else:
                return None
            self.epoch_rows[start] = replace(self.epoch_rows[start], status=EpochStatus.CLOSED.value)
            wallet = {acc: self.wallets.get(uid) for uid, acc in self.accounts.items()}
            book = [
                BookOrder(
                    o.id,
                    r.account,
                    o.side,
                    o.qty - o.filled,
                    o.price,
                    o.locked,
                    o.tif,
                    o.expires_at,
                    wallet.get(r.account),
                )
                for r in self.orders.values()
                if (o := r.view).status == OrderStatus.OPEN and o.epoch_start == start
            ]
            state = None
            if utility is not None and utility in self.accounts and utility in self.wallets:
                acc = self.accounts[utility]
                state = UtilityState(
                    acc,
                    self.wallets[utility],
                    self.balances[(acc, Asset.ENERGY)].available,
                    self.balances[(acc, Asset.QUOTE)].available,
                )
            summary = self._apply(planner(start, book, state))
            self.events.append(epoch_event(summary))
            return summary

    def _apply(self, plan: ClosePlan) -> EpochSummary:
        self._ensure_epoch(plan.next)
        self.cleared_sets[plan.epoch.start] = [(e.order_id, e.account, e.side, e.qty, e.price) for e in plan.entries]
        for c in plan.changes:
            row = self.orders[c.id]
            row.view = replace(
                row.view,
                filled=row.view.filled + c.filled,
                locked=c.locked,
                status=c.status.value,
                epoch_start=c.epoch_start,
            )
        for m in plan.releases:
            b = self.balances[(m.account, m.asset)]
            b.available += m.amount
            b.locked -= m.amount
        for m in plan.reserved:
            b = self.balances[(m.account, m.asset)]
            b.available -= m.amount
            b.locked += m.amount
        now = self.wall()
        for t in plan.trades:
            tid = len(self.trades) + 1
            self.trades.append(
                TradeRow(
                    tid,
                    plan.epoch.start,
                    t.buy_order,
                    t.sell_order,
                    t.buyer,
                    t.seller,
                    t.qty,
                    t.price,
                    t.value,
                    t.fee,
                    now,
                    delivered=t.delivered,
                    zone=t.zone,
                    grid_fee_seller=t.grid_fee_seller,
                    grid_fee_buyer=t.grid_fee_buyer,
                )
            )
            self.intents.append((trade_key(tid), settlement_payload(tid, t)))
        summary = plan.summary()
        self.epoch_rows[plan.epoch.start] = summary
        return summary
