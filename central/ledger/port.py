"""The ``Ledger`` port (docs/decisions/0002-ledger-port-two-backends.md): the few chain operations central needs,
implemented by the embedded LiteSVM ledger (``central.ledger.embedded``) and by a JSON-RPC client
(``central.ledger.rpc``).

Values use solders types (``Pubkey``, ``Hash``, ``Signature``, ``Account``, ``VersionedTransaction``). Transaction
errors are carried in their JSON-RPC form (``"AccountInUse"``, ``{"InstructionError": [0, {"Custom": 1}]}``), the
same whichever adapter produced them. All failures are ``central.ledger.errors.LedgerError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

#: Solana's packet data limit for a serialized transaction (signatures included).
MAX_TRANSACTION_SIZE = 1232
#: A blockhash is valid for this many blocks after the block that produced it.
MAX_PROCESSING_AGE = 150
#: How many signatures ``getSignatureStatuses`` accepts per call.
MAX_SIGNATURES_PER_QUERY = 256
#: How many accounts ``getMultipleAccounts`` accepts per call.
MAX_ACCOUNTS_PER_QUERY = 100

TxError = object
"""A Solana transaction error in its JSON-RPC form: ``str`` or ``dict`` (None means success)."""


@dataclass(frozen=True)
class LatestBlockhash:
    blockhash: Hash
    #: The transaction can land up to (and including) this block height, never after.
    last_valid_block_height: int


@dataclass(frozen=True)
class SignatureStatus:
    slot: int
    #: None when the transaction succeeded; otherwise its error (the transaction landed, fee charged, no effects).
    err: TxError | None
    #: "processed" | "confirmed" | "finalized"
    confirmation_status: str

    @property
    def ok(self) -> bool:
        return self.err is None


@dataclass(frozen=True)
class TokenAmount:
    amount: int
    decimals: int


@dataclass(frozen=True)
class TransactionRecord:
    """A landed transaction, as ``getTransaction`` reports it."""

    signature: Signature
    slot: int
    block_time: int | None
    transaction: VersionedTransaction
    err: TxError | None
    fee: int
    logs: tuple[str, ...]


@runtime_checkable
class Ledger(Protocol):
    """Async access to one Solana ledger. Implementations: ``EmbeddedLedger``, ``RpcLedger``."""

    async def get_latest_blockhash(self) -> LatestBlockhash: ...

    async def get_block_height(self) -> int: ...

    async def get_slot(self) -> int: ...

    async def send_transaction(self, tx: VersionedTransaction, *, skip_preflight: bool = True) -> Signature:
        """Submit a signed transaction. With ``skip_preflight`` the result is learned only from
        ``get_signature_statuses``; without it a transaction that would fail raises ``TransactionFailedError`` and
        is not sent. Raises ``TransactionRejectedError``/``BlockhashNotFoundError`` when refused outright."""
        ...

    async def get_signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        """Statuses from the full history (None: unknown — not landed, or not yet). Any length; batched inside."""
        ...

    async def get_account(self, address: Pubkey) -> Account | None: ...

    async def get_multiple_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        """Any length; batched inside."""
        ...

    async def get_balance(self, address: Pubkey) -> int: ...

    async def get_token_account_balance(self, address: Pubkey) -> TokenAmount | None:
        """Balance of an SPL Token / Token-2022 account; None if the account does not exist."""
        ...

    async def get_minimum_balance_for_rent_exemption(self, size: int) -> int: ...

    async def request_airdrop(self, address: Pubkey, lamports: int) -> Signature:
        """Development only (embedded ledger, test validators); raises ``AirdropUnavailableError`` elsewhere."""
        ...

    async def get_transaction(self, signature: Signature) -> TransactionRecord | None: ...

    async def close(self) -> None: ...
