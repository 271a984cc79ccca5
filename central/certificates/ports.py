"""The ledger operations certificates need, as a small port, plus its embedded-LiteSVM adapter.

The project-wide ``Ledger`` port (central/ledger) offers the same operations; ``LedgerAdapter`` wraps it once it
exists. The LiteSVM adapter here executes the real Token-2022, ATA and Memo programs in-process.
"""

from __future__ import annotations

from typing import Protocol

from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata

from central.certificates.errors import ChainError
from central.certificates.token2022 import ACCOUNT_BASE_LEN, ACCOUNT_TYPE_ACCOUNT, TOKEN_2022_PROGRAM_ID


class CertificateLedger(Protocol):
    async def latest_blockhash(self) -> Hash: ...

    async def send_transaction(self, tx: Transaction) -> Signature:
        """Submit and wait for confirmation; raise ``ChainError`` if the chain refuses it."""
        ...

    async def account_data(self, address: Pubkey) -> bytes | None:
        """The account's data, or None when it does not exist."""
        ...

    async def account_lamports(self, address: Pubkey) -> int: ...

    async def minimum_balance(self, size: int) -> int: ...

    async def token_accounts(self, mint: Pubkey) -> list[tuple[Pubkey, bytes]]:
        """Every Token-2022 token account of ``mint`` (address, data)."""
        ...


class LiteSVMLedger:
    """Adapter over an in-process ``LiteSVM``."""

    def __init__(self, svm: LiteSVM) -> None:
        self.svm = svm

    async def latest_blockhash(self) -> Hash:
        return self.svm.latest_blockhash()

    async def send_transaction(self, tx: Transaction) -> Signature:
        result = self.svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            logs = " | ".join(result.meta().logs()[-4:])
            raise ChainError(f"transaction failed: {result.err()} ({logs})")
        self.svm.expire_blockhash()  # next transaction gets a fresh blockhash, so identical ones are not duplicates
        return result.signature()

    async def account_data(self, address: Pubkey) -> bytes | None:
        account = self.svm.get_account(address)
        if account is None or account.lamports == 0:
            return None
        return bytes(account.data)

    async def account_lamports(self, address: Pubkey) -> int:
        account = self.svm.get_account(address)
        return 0 if account is None else account.lamports

    async def minimum_balance(self, size: int) -> int:
        return self.svm.minimum_balance_for_rent_exemption(size)

    async def token_accounts(self, mint: Pubkey) -> list[tuple[Pubkey, bytes]]:
        raw_mint = bytes(mint)
        found = []
        for address, account in self.svm.get_program_accounts(TOKEN_2022_PROGRAM_ID):
            data = bytes(account.data)
            is_token_account = len(data) == ACCOUNT_BASE_LEN or (
                len(data) > ACCOUNT_BASE_LEN and data[ACCOUNT_BASE_LEN] == ACCOUNT_TYPE_ACCOUNT
            )
            if is_token_account and data[:32] == raw_mint:
                found.append((address, data))
        return found
