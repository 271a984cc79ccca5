"""The store port the market needs. Adapters: ``postgres.PgMarketStore`` (real) and ``memory.InMemoryMarketStore``.

Concurrency both adapters keep: placing and cancelling hold the epoch's lock in shared mode and see the epoch's
status after taking it; closing an epoch holds it exclusively, so an order is either in the book that clears or
refused (``closed``). Only one close runs at a time (any number of callers may ask; the others get None).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from central.market.epochs import Epoch
from central.market.escrow_seeds import Asset
from central.market.model import (
    BookOrder,
    ClosePlan,
    DepositToSign,
    DepthLevel,
    EpochSummary,
    OrderRequest,
    OrderView,
    Placed,
    TransferRecord,
    TransferState,
    TransferView,
    UtilityState,
)

#: Plans the close of the epoch starting at the given time from its open orders and the utility's account (None:
#: no utility) (pure, ``plan.plan_close``).
Planner = Callable[[datetime, Sequence[BookOrder], UtilityState | None], ClosePlan]

#: One order of a cleared set: order id, account, side (0 buy, 1 sell), qty, price.
OrderSetRow = tuple[int, int, int, int, int]


class MarketStore(Protocol):
    async def account_of(self, user_id: UUID) -> int:
        """The user's market account number, created (with its two escrow rows) on first use."""
        ...

    async def existing_account(self, user_id: UUID) -> int | None: ...

    async def place(self, req: OrderRequest) -> Placed:
        """Under the epoch's shared lock: check wallet, account and that the epoch (created on its first order) is
        open, lock ``req.lock`` of the user's available escrow and record the order; or say why not."""
        ...

    async def cancel(self, user_id: UUID, order_id: int) -> OrderView:
        """Cancel an open order of the user's, releasing its lock (rules: ``plan.check_cancel``). Raises
        ``NotFoundError`` for an order that is not the user's."""
        ...

    async def close_next_due(
        self, ended: Epoch, planner: Planner, utility: UUID | None = None, *, zoned: bool = False
    ) -> EpochSummary | None:
        """Close the oldest epoch (open or closed) that ended by ``ended.end``: mark it closed under its exclusive
        lock, plan with ``planner`` from its open orders and apply the plan (orders, escrow, trades and their
        settlement intents, the epoch's figures) in one transaction. None when nothing is due or another close is
        running. With ``utility`` (the utility's user id), the planner also gets the utility's account and available
        escrow (``UtilityState``, read under its escrow rows' locks; None if it has no account or wallet yet);
        ``zoned``: each order carries its owner's meter serial (``BookOrder.meter``, for its grid zone).

        ``ended`` (the latest epoch that ended, by the caller's clock) is due even while it has no row: its first
        order may still be on its way (it read the clock before the end, and creates the epoch's row under the
        shared lock). So when no row is due, the store takes ``ended``'s lock exclusively (waiting for such an order
        to commit), creates its row if still missing and closes it unless already cleared: a late first order is
        then refused instead of landing in an epoch the clearer passed over."""
        ...

    async def orders_of(self, account: int, *, open_only: bool, limit: int) -> list[OrderView]: ...

    async def depth(self, epoch_start: datetime) -> list[DepthLevel]: ...

    async def epochs(self, limit: int) -> list[EpochSummary]: ...

    async def epoch(self, start: datetime) -> EpochSummary | None: ...

    async def recent_trades(self, limit: int) -> list[dict[str, Any]]: ...

    async def fills_of(self, account: int, limit: int) -> list[dict[str, Any]]: ...

    async def epoch_order_set(self, start: datetime) -> list[OrderSetRow]: ...


class EscrowStore(Protocol):
    """Escrow balances and the deposits/withdrawals that move them (the chain side is ``central.market.escrow``)."""

    async def wallet_and_account(self, user_id: UUID) -> tuple[str, int]:
        """The user's linked wallet and market account (created on first use). ``ConflictError`` without a wallet."""
        ...

    async def account_of(self, user_id: UUID) -> int: ...

    async def escrow_opened(self, account: int, asset: Asset) -> bool: ...

    async def mark_opened(self, account: int, asset: Asset) -> None: ...

    async def escrow_balances(self, account: int) -> dict[str, dict[str, int | str]]:
        """Per asset: its escrow ``address``, ``available`` and ``locked``."""
        ...

    async def user_escrow_balances(self, user_id: UUID) -> dict[str, dict[str, int | str]]:
        """``escrow_balances`` of the user's account in one step; empty before the user's first market action."""
        ...

    async def record_transfer(self, rec: TransferRecord) -> None: ...

    async def waiting_deposits(self, account: int) -> int:
        """Deposits of ``account`` built and still waiting for the wallet's signature (not yet expired)."""
        ...

    async def start_withdrawal(
        self, user_id: UUID, asset: Asset, amount: int, build: Callable[[int, str], Awaitable[TransferRecord]]
    ) -> TransferRecord:
        """In one transaction: the user's wallet and account (``ConflictError`` without a wallet), ``amount`` moved
        from available to locked (``InsufficientEscrowError`` if not available), ``build(account, wallet)``'s
        signed transfer recorded as submitted."""
        ...

    async def submit_deposit(self, account: int, transfer_id: UUID, cosign: Callable[[DepositToSign], str]) -> None:
        """Under the deposit's row lock: ``cosign`` checks it (raises) and returns the transaction's signature,
        recorded as submitted. ``NotFoundError`` when the account has no such deposit."""
        ...

    async def transfer_state(self, transfer_id: UUID) -> TransferState: ...

    async def transfer_view(self, transfer_id: UUID) -> TransferView: ...

    async def open_transfers(self, only: UUID | None) -> list[TransferState]:
        """Transfers still built or submitted (all, or just ``only``)."""
        ...

    async def finish_transfer(self, transfer_id: UUID, status: str, error: str | None) -> None:
        """Record the outcome and move the balance (``plan.transfer_moves``), once: a decided transfer is left."""
        ...


class SettlementStore(Protocol):
    """The settlement intents of trades (kept by the chain outbox) and recording their outcome."""

    async def apply_settled(self) -> int:
        """Record every trade whose settlement intent the chain outbox confirmed, in one transaction: the trade
        becomes settled (with the signature), the locks it owed are spent (``plan.spent_at_settlement``) and epochs
        whose trades are all settled become settled. Idempotent. Returns how many trades."""
        ...

    async def pending_settlements(self, limit: int) -> list[dict[str, Any]]:
        """Payloads (``plan.settlement_payload``) of the oldest intents due for submission."""
        ...

    async def open_settlements(self) -> int:
        """How many intents are submitted or due for submission."""
        ...
