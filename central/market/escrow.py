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

import base64
import binascii
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg
from solders.instruction import Instruction
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.chain.outbox import CONFIRMED_LEVELS
from central.ledger.builder import (
    check_size,
    compile_message,
    partially_sign,
    send_and_confirm,
    sign,
    wait_for_statuses,
)
from central.ledger.errors import LedgerError, TransactionFailedError, TransactionRejectedError
from central.ledger.port import Ledger
from central.ledger.tokens import TOKEN_ACCOUNT_SIZE
from central.market.book import MarketBook
from central.market.chain import MarketChain
from central.market.errors import (
    ConflictError,
    InsufficientEscrowError,
    InvalidOrderError,
    InvalidTransactionError,
    NotFoundError,
)
from central.market.escrow_seeds import Asset
from central.market.events import notify

log = logging.getLogger(__name__)
MAX_AMOUNT = 2**63 - 1


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


_COLS = "id, asset, kind, amount, wallet, status, signature, error, created_at"


def _view(r: asyncpg.Record) -> TransferView:
    return TransferView(**{k: r[k] for k in TransferView.__dataclass_fields__})


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
        self, pool: asyncpg.Pool, ledger: Ledger, chain: MarketChain, book: MarketBook, confirm_wait_s: float = 10.0
    ) -> None:
        self.pool = pool
        self.ledger = ledger
        self.chain = chain
        self.book = book
        self.confirm_wait_s = confirm_wait_s

    async def _wallet(self, conn: asyncpg.Connection, user_id: UUID) -> Pubkey:
        w = await conn.fetchval("SELECT address FROM wallets WHERE user_id = $1", user_id)
        if w is None:
            raise ConflictError("link a wallet first")
        return Pubkey.from_string(w)

    async def ensure_open(self, account: int, asset: Asset) -> None:
        """Create the escrow token account on chain unless it exists (idempotent, safe concurrently)."""
        opened = await self.pool.fetchval(
            "SELECT opened FROM escrow_balances WHERE account = $1 AND asset = $2", account, asset.value
        )
        if opened:
            return
        address = self.chain.escrow(account, asset)
        if await self.ledger.get_account(address) is None:
            rent = await self.ledger.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE)
            try:
                await send_and_confirm(
                    self.ledger,
                    self.chain.fee_payer,
                    self.chain.open_escrow(account, asset, rent),
                    [self.chain.escrow_authority],
                )
            except TransactionFailedError:
                if await self.ledger.get_account(address) is None:  # not a concurrent creation: a real failure
                    raise
        await self.pool.execute(
            "UPDATE escrow_balances SET opened = true WHERE account = $1 AND asset = $2", account, asset.value
        )

    async def balances(self, user_id: UUID) -> dict[str, dict[str, int | str]]:
        async with self.pool.acquire() as conn, conn.transaction():
            acc = await self.book.account(conn, user_id)
            rows = await conn.fetch(
                "SELECT asset, address, available, locked FROM escrow_balances WHERE account = $1", acc
            )
        return {r["asset"]: {"address": r["address"], "available": r["available"], "locked": r["locked"]} for r in rows}

    async def _message(self, instructions: list[Instruction]) -> tuple[MessageV0, int]:
        """The v0 message of a transfer (fee payer: the platform) and the block height it is valid until."""
        latest = await self.ledger.get_latest_blockhash()
        message = compile_message(self.chain.fee_payer.pubkey, instructions, latest.blockhash)
        check_size(message)
        return message, latest.last_valid_block_height

    # ------------------------------------------------------------------------------------------------ deposits

    async def request_deposit(self, user_id: UUID, asset_name: str, amount: int) -> DepositRequest:
        asset, amount = _asset(asset_name), _amount(amount)
        async with self.pool.acquire() as conn, conn.transaction():
            wallet = await self._wallet(conn, user_id)
            account = await self.book.account(conn, user_id)
        await self.ensure_open(account, asset)
        tid = uuid4()
        message, height = await self._message(self.chain.deposit(tid, account, asset, wallet, amount))
        tx = partially_sign(message, [])
        async with self.pool.acquire() as conn:
            await _record(conn, tid, account, asset, "deposit", amount, wallet, message, height, None)
        return DepositRequest(tid, asset.value, amount, base64.b64encode(bytes(tx)).decode(), height)

    async def submit_deposit(self, user_id: UUID, transfer_id: UUID, signed_b64: str) -> TransferView:
        try:
            tx = VersionedTransaction.from_bytes(base64.b64decode(signed_b64, validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise InvalidTransactionError("transaction is not a base64 serialized versioned transaction") from None
        async with self.pool.acquire() as conn, conn.transaction():
            account = await self.book.account(conn, user_id)
            row = await conn.fetchrow(
                "SELECT status, message, wallet, signature FROM escrow_transfers "
                "WHERE id = $1 AND account = $2 AND kind = 'deposit' FOR UPDATE",
                transfer_id,
                account,
            )
            if row is None:
                raise NotFoundError("no such deposit")
            message_bytes = to_bytes_versioned(tx.message)
            if message_bytes != bytes(row["message"]):
                raise InvalidTransactionError("the transaction is not the one built for this deposit")
            if row["status"] != "built":
                raise ConflictError(f"deposit is already {row['status']}")
            keys = list(tx.message.account_keys[: tx.message.header.num_required_signatures])
            wallet = Pubkey.from_string(row["wallet"])
            if len(tx.signatures) != len(keys) or wallet not in keys:
                raise InvalidTransactionError("the transaction's signatures do not match its signers")
            wallet_sig = tx.signatures[keys.index(wallet)]
            if not wallet_sig.verify(wallet, message_bytes):
                raise InvalidTransactionError("the wallet's signature does not verify")
            fee_sig = self.chain.fee_payer.signer.sign_message(message_bytes)
            sigs = [fee_sig if k == self.chain.fee_payer.pubkey else wallet_sig for k in keys]
            signed = VersionedTransaction.populate(tx.message, sigs)
            await conn.execute(
                "UPDATE escrow_transfers SET status = 'submitted', signature = $2, submitted_at = now() WHERE id = $1",
                transfer_id,
                str(signed.signatures[0]),
            )
        await self._send(transfer_id, signed)
        return await self._resolve_and_get(transfer_id)

    # ------------------------------------------------------------------------------------------------ withdrawals

    async def withdraw(self, user_id: UUID, asset_name: str, amount: int) -> TransferView:
        asset, amount = _asset(asset_name), _amount(amount)
        tid = uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            wallet = await self._wallet(conn, user_id)
            account = await self.book.account(conn, user_id)
            ok = await conn.fetchval(
                "UPDATE escrow_balances SET available = available - $3, locked = locked + $3, updated_at = now() "
                "WHERE account = $1 AND asset = $2 AND available >= $3 RETURNING 1",
                account,
                asset.value,
                amount,
            )
            if ok is None:
                raise InsufficientEscrowError(f"not enough available {asset.value} in escrow")
            message, height = await self._message(self.chain.withdrawal(tid, account, asset, wallet, amount))
            signed = sign(message, [self.chain.fee_payer, self.chain.escrow_authority])
            sig = signed.signatures[0]
            await _record(conn, tid, account, asset, "withdrawal", amount, wallet, message, height, sig)
        await self._send(tid, signed)
        return await self._resolve_and_get(tid)

    # ------------------------------------------------------------------------------------------------ resolution

    async def _send(self, transfer_id: UUID, tx: VersionedTransaction) -> None:
        try:
            await self.ledger.send_transaction(tx, skip_preflight=False)
        except TransactionFailedError as e:  # preflight refused it: it was never sent
            await self._finish(transfer_id, "failed", str(e.err))
        except TransactionRejectedError as e:  # refused outright (e.g. blockhash too old): cannot land
            await self._finish(transfer_id, "expired", str(e))
        except LedgerError:  # unknown: stays submitted; resolve_open decides later
            log.warning("escrow transfer %s: send failed, will resolve later", transfer_id, exc_info=True)

    async def _resolve_and_get(self, transfer_id: UUID) -> TransferView:
        row = await self.pool.fetchrow(
            "SELECT signature, last_valid_block_height, status FROM escrow_transfers WHERE id = $1", transfer_id
        )
        if row["status"] == "submitted":
            with contextlib.suppress(LedgerError):  # still unknown: answered as submitted, resolved later
                await wait_for_statuses(
                    self.ledger,
                    [Signature.from_string(row["signature"])],
                    last_valid_block_height=row["last_valid_block_height"],
                    wait_seconds=self.confirm_wait_s,
                )
            await self.resolve_open(only=transfer_id)
        r = await self.pool.fetchrow(f"SELECT {_COLS} FROM escrow_transfers WHERE id = $1", transfer_id)  # noqa: S608
        return _view(r)

    async def resolve_open(self, only: UUID | None = None) -> int:
        """Decide every submitted transfer that has an outcome (and expire built deposits past their blockhash).
        Returns how many were decided."""
        rows = await self.pool.fetch(
            "SELECT id, status, signature, last_valid_block_height FROM escrow_transfers "
            "WHERE status IN ('built', 'submitted') AND ($1::uuid IS NULL OR id = $1)",
            only,
        )
        if not rows:
            return 0
        height = await self.ledger.get_block_height()
        submitted = [r for r in rows if r["status"] == "submitted"]
        statuses = await self.ledger.get_signature_statuses([Signature.from_string(r["signature"]) for r in submitted])
        decided = 0
        for r, st in zip(submitted, statuses, strict=True):
            if st is not None and not st.ok:  # landed with an error: nothing moved
                await self._finish(r["id"], "failed", str(st.err))
                decided += 1
            elif st is not None and st.confirmation_status in CONFIRMED_LEVELS:
                await self._finish(r["id"], "confirmed", None)
                decided += 1
            elif st is not None:
                pass  # processed but not yet confirmed: decided on a later pass
            elif height > r["last_valid_block_height"]:
                await self._finish(r["id"], "expired", "blockhash expired before the transaction landed")
                decided += 1
        for r in rows:
            if r["status"] == "built" and height > r["last_valid_block_height"]:
                await self._finish(r["id"], "expired", "not submitted before the blockhash expired")
                decided += 1
        return decided

    async def _finish(self, transfer_id: UUID, status: str, error: str | None) -> None:
        """Record the outcome and move the balances, once (the row lock and status check make it idempotent)."""
        async with self.pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(
                "SELECT account, asset, kind, amount, status FROM escrow_transfers WHERE id = $1 FOR UPDATE",
                transfer_id,
            )
            if r["status"] not in ("built", "submitted"):
                return
            await conn.execute(
                "UPDATE escrow_transfers SET status = $2, error = $3, finished_at = now() WHERE id = $1",
                transfer_id,
                status,
                error,
            )
            if r["status"] == "built":
                return  # never sent: no balance was touched
            if r["kind"] == "deposit":
                if status == "confirmed":
                    await conn.execute(
                        "UPDATE escrow_balances SET available = available + $3, updated_at = now() "
                        "WHERE account = $1 AND asset = $2",
                        r["account"],
                        r["asset"],
                        r["amount"],
                    )
            elif status == "confirmed":
                await conn.execute(
                    "UPDATE escrow_balances SET locked = locked - $3, updated_at = now() "
                    "WHERE account = $1 AND asset = $2",
                    r["account"],
                    r["asset"],
                    r["amount"],
                )
            else:
                await conn.execute(
                    "UPDATE escrow_balances SET locked = locked - $3, available = available + $3, updated_at = now() "
                    "WHERE account = $1 AND asset = $2",
                    r["account"],
                    r["asset"],
                    r["amount"],
                )
            await notify(conn, {"type": "account", "account": r["account"]})


async def _record(
    conn: asyncpg.Connection,
    tid: UUID,
    account: int,
    asset: Asset,
    kind: str,
    amount: int,
    wallet: Pubkey,
    message: MessageV0,
    height: int,
    signature: Signature | None,
) -> None:
    """Record a transfer: unsigned (a deposit awaiting the wallet) as 'built', signed (a withdrawal) as 'submitted'."""
    await conn.execute(
        "INSERT INTO escrow_transfers (id, account, asset, kind, amount, wallet, message, last_valid_block_height, "
        "status, signature, submitted_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text, CASE WHEN $10::text IS NULL THEN NULL ELSE now() END)",
        tid,
        account,
        asset.value,
        kind,
        amount,
        str(wallet),
        to_bytes_versioned(message),
        height,
        "built" if signature is None else "submitted",
        None if signature is None else str(signature),
    )
