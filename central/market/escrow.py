"""Escrow on chain and in the database: opening escrow accounts, deposits (transaction requests) and withdrawals.

Deposit (transaction-request pattern): ``request_deposit`` builds a v0 message — the user's wallet transfers from its
ATA to its escrow, the platform's fee payer pays — stores the exact message bytes and returns the unsigned
transaction (base64). The wallet signs it (``central.market.client.sign_transaction_request``) and
``submit_deposit`` checks the message is byte-for-byte the one built, verifies the wallet's signature, adds the fee
payer's, records the signature (``submitted``), then sends. The escrow is credited only when the transaction is
seen landed without error (``confirmed``); an error (``failed``) or a blockhash past its last valid height
(``expired``) credits nothing.

Withdrawal: moves ``amount`` from available to locked, records the signed transaction, sends; on confirmation the
lock is spent, on failure/expiry it returns to available. So at every step on-chain escrow = available + locked,
except for transfers in flight (``submitted``), which ``resolve_open`` settles (after a crash too).
"""

from __future__ import annotations

import contextlib
import logging
from uuid import UUID, uuid4

import asyncpg
from solders.instruction import Instruction
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger import cosign
from central.ledger.builder import send_and_confirm, sign, wait_for_statuses
from central.ledger.cosign import Verdict
from central.ledger.errors import LedgerError, TransactionFailedError
from central.ledger.platform import Platform
from central.ledger.tokens import TOKEN_ACCOUNT_SIZE
from central.market.book import MarketBook
from central.market.errors import ConflictError, InvalidOrderError, InvalidTransactionError, TooManyWaitingError
from central.market.escrow_seeds import Asset
from central.market.instructions import MarketInstructions
from central.market.model import DepositRequest, DepositToSign, TransferRecord, TransferView
from central.market.port import EscrowStore

__all__ = ["MAX_AMOUNT", "DepositRequest", "Escrow", "InvalidTransactionError", "TransferView"]

log = logging.getLogger(__name__)
MAX_AMOUNT = 2**63 - 1
#: Deposits one user may have waiting for the wallet's signature at once (each is a stored row until it expires,
#: a minute or two after it was built).
MAX_WAITING_DEPOSITS = 10


def _asset(name: str) -> Asset:
    try:
        return Asset(name)
    except ValueError:
        raise InvalidOrderError("asset must be 'energy' or 'quote'") from None


def _amount(amount: int) -> int:
    if not 1 <= amount <= MAX_AMOUNT:
        raise InvalidOrderError("amount must be a positive integer of base units")
    return amount


class Escrow:
    def __init__(
        self,
        pool: asyncpg.Pool,  # noqa: ARG002 - the book's store runs on it (kept for the callers' signature)
        platform: Platform,
        book: MarketBook,
        confirm_wait_s: float = 10.0,
    ) -> None:
        self.platform = platform
        self.ledger = platform.ledger
        self.chain = MarketInstructions.for_platform(platform)
        self._fee_payer = platform.fee_payer
        self._authority = platform.market_keys()[0]
        #: The database side (balances, transfer records): the book's PostgreSQL store.
        self.store: EscrowStore = book.pg
        self.confirm_wait_s = confirm_wait_s

    async def ensure_open(self, account: int, asset: Asset) -> None:
        """Create the escrow token account on chain unless it exists (idempotent, safe concurrently)."""
        if await self.store.escrow_opened(account, asset):
            return
        address = self.chain.escrow(account, asset)
        if await self.ledger.get_account(address) is None:
            rent = await self.ledger.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE)
            try:
                await send_and_confirm(
                    self.ledger,
                    self._fee_payer,
                    self.chain.open_escrow(account, asset, rent),
                    [self._authority],
                )
            except TransactionFailedError:
                if await self.ledger.get_account(address) is None:  # not a concurrent creation: a real failure
                    raise
        await self.store.mark_opened(account, asset)

    async def balances(self, user_id: UUID) -> dict[str, dict[str, int | str]]:
        """Per asset: the escrow address, available and locked (the account is made on the first look)."""
        found = await self.store.user_escrow_balances(user_id)  # one statement once the account exists
        return found or await self.store.escrow_balances(await self.store.account_of(user_id))

    async def _message(self, instructions: list[Instruction]) -> tuple[MessageV0, int]:
        """The v0 message of a transfer (fee payer: the platform) and the block height it is valid until."""
        request = await cosign.build(self.ledger, self.chain.payer, instructions)
        return request.message, request.last_valid_block_height

    # ------------------------------------------------------------------------------------------------ deposits

    async def request_deposit(self, user_id: UUID, asset_name: str, amount: int) -> DepositRequest:
        asset, amount = _asset(asset_name), _amount(amount)
        wallet_address, account = await self.store.wallet_and_account(user_id)
        if await self.store.waiting_deposits(account) >= MAX_WAITING_DEPOSITS:
            raise TooManyWaitingError(
                f"{MAX_WAITING_DEPOSITS} deposits are waiting for your wallet's signature: sign one, or wait a minute "
                "or two until they expire"
            )
        wallet = Pubkey.from_string(wallet_address)
        await self.ensure_open(account, asset)
        tid = uuid4()
        message, height = await self._message(self.chain.deposit(tid, account, asset, wallet, amount))
        await self.store.record_transfer(_record(tid, account, asset, "deposit", amount, wallet, message, height, None))
        return DepositRequest(tid, asset.value, amount, cosign.encode(cosign.unsigned(message)), height)

    async def submit_deposit(self, user_id: UUID, transfer_id: UUID, signed_b64: str) -> TransferView:
        try:
            tx = cosign.decode(signed_b64)
        except cosign.TransactionRequestError as e:
            raise InvalidTransactionError(str(e)) from None
        signed: list[VersionedTransaction] = []

        def cosigned(row: DepositToSign) -> str:
            try:
                cosign.check_unchanged(tx, row.message)
            except cosign.TransactionRequestError:
                raise InvalidTransactionError("the transaction is not the one built for this deposit") from None
            if row.status != "built":
                raise ConflictError(f"deposit is already {row.status}")
            try:
                signed.append(cosign.cosign(tx, [self._fee_payer]))
            except cosign.TransactionRequestError as e:
                raise InvalidTransactionError(str(e)) from None
            return str(signed[-1].signatures[0])

        await self.store.submit_deposit(await self.store.account_of(user_id), transfer_id, cosigned)
        await self._send(transfer_id, signed[-1])
        return await self._resolve_and_get(transfer_id)

    # ------------------------------------------------------------------------------------------------ withdrawals

    async def withdraw(self, user_id: UUID, asset_name: str, amount: int) -> TransferView:
        asset, amount = _asset(asset_name), _amount(amount)
        tid = uuid4()
        signed: list[VersionedTransaction] = []

        async def build(account: int, wallet_address: str) -> TransferRecord:
            wallet = Pubkey.from_string(wallet_address)
            message, height = await self._message(self.chain.withdrawal(tid, account, asset, wallet, amount))
            signed.append(sign(message, [self._fee_payer, self._authority]))
            sig = signed[-1].signatures[0]
            return _record(tid, account, asset, "withdrawal", amount, wallet, message, height, sig)

        await self.store.start_withdrawal(user_id, asset, amount, build)
        await self._send(tid, signed[-1])
        return await self._resolve_and_get(tid)

    # ------------------------------------------------------------------------------------------------ resolution

    async def _send(self, transfer_id: UUID, tx: VersionedTransaction) -> None:
        sent = await cosign.send(self.ledger, tx)
        if sent.verdict is not Verdict.OPEN:  # refused by preflight or outright: it was never executed
            await self._finish(transfer_id, sent.verdict.value, sent.error)
        elif sent.refused:  # unknown: stays submitted; resolve_open decides later
            log.warning("escrow transfer %s: send failed (%s), will resolve later", transfer_id, sent.error)

    async def _resolve_and_get(self, transfer_id: UUID) -> TransferView:
        state = await self.store.transfer_state(transfer_id)
        if state.status == "submitted" and state.signature is not None:
            with contextlib.suppress(LedgerError):  # still unknown: answered as submitted, resolved later
                await wait_for_statuses(
                    self.ledger,
                    [Signature.from_string(state.signature)],
                    last_valid_block_height=state.last_valid_block_height,
                    wait_seconds=self.confirm_wait_s,
                )
            await self.resolve_open(only=transfer_id)
        return await self.store.transfer_view(transfer_id)

    async def resolve_open(self, only: UUID | None = None) -> int:
        """Decide every submitted transfer that has an outcome (and expire built deposits past their blockhash).
        Returns how many were decided."""
        rows = await self.store.open_transfers(only)
        if not rows:
            return 0
        height = await self.ledger.get_block_height()
        submitted = [r for r in rows if r.status == "submitted" and r.signature is not None]
        statuses = await self.ledger.get_signature_statuses(
            [Signature.from_string(str(r.signature)) for r in submitted]
        )
        decided = 0
        for r, st in zip(submitted, statuses, strict=True):
            outcome = cosign.decide(st, height, r.last_valid_block_height)
            if outcome.verdict is Verdict.OPEN:
                continue  # not landed yet, or processed but not yet confirmed: decided on a later pass
            error = outcome.error  # failed: landed with an error, nothing moved
            if outcome.verdict is Verdict.EXPIRED:
                error = "blockhash expired before the transaction landed"
            await self._finish(r.id, outcome.verdict.value, error)
            decided += 1
        for r in rows:
            if r.status == "built" and height > r.last_valid_block_height:
                await self._finish(r.id, "expired", "not submitted before the blockhash expired")
                decided += 1
        return decided

    async def _finish(self, transfer_id: UUID, status: str, error: str | None) -> None:
        """Record the outcome and move the balances, once (``plan.transfer_moves``; idempotent)."""
        await self.store.finish_transfer(transfer_id, status, error)


def _record(
    tid: UUID,
    account: int,
    asset: Asset,
    kind: str,
    amount: int,
    wallet: Pubkey,
    message: MessageV0,
    height: int,
    signature: Signature | None,
) -> TransferRecord:
    """A transfer: unsigned (a deposit awaiting the wallet) recorded as 'built', signed (a withdrawal) 'submitted'."""
    return TransferRecord(
        tid,
        account,
        asset,
        kind,
        amount,
        str(wallet),
        to_bytes_versioned(message),
        height,
        None if signature is None else str(signature),
    )
