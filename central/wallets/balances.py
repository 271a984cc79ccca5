"""On-chain balances of a linked wallet, and the development quote faucet."""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from central.ledger.builder import associated_token_address, create_ata_idempotent, mint_to_checked, send_and_confirm
from central.ledger.errors import LedgerError
from central.ledger.platform import QUOTE_DECIMALS, Platform
from central.wallets.errors import ChainUnavailableError, FaucetUnavailableError


@dataclass(frozen=True, slots=True)
class Balances:
    energy_wh: int
    quote: int


async def balances(chain: Platform, wallet: str) -> Balances:
    owner = Pubkey.from_string(wallet)
    try:
        energy = await chain.ledger.get_token_account_balance(associated_token_address(owner, chain.energy_mint))
        quote = (
            await chain.ledger.get_token_account_balance(associated_token_address(owner, chain.quote_mint))
            if chain.quote_mint is not None
            else None
        )
    except LedgerError as exc:
        raise ChainUnavailableError(f"ledger unavailable: {exc}") from exc
    return Balances(energy.amount if energy else 0, quote.amount if quote else 0)


async def faucet_quote(chain: Platform, wallet: str, amount: int) -> str:
    """Mint ``amount`` quote base units to ``wallet`` (its ATA created if needed); returns the signature."""
    if chain.quote_mint is None or chain.quote_faucet_authority is None:
        raise FaucetUnavailableError("the quote faucet is available only on the embedded ledger")
    owner = Pubkey.from_string(wallet)
    payer = chain.fee_payer.pubkey
    ixs = [
        create_ata_idempotent(payer, owner, chain.quote_mint),
        mint_to_checked(
            chain.quote_mint,
            associated_token_address(owner, chain.quote_mint),
            chain.quote_faucet_authority.pubkey,
            amount=amount,
            decimals=QUOTE_DECIMALS,
        ),
    ]
    try:
        sig = await send_and_confirm(chain.ledger, chain.fee_payer, ixs, [chain.quote_faucet_authority])
    except LedgerError as exc:
        raise ChainUnavailableError(f"faucet transaction failed: {exc}") from exc
    return str(sig)
