"""The one "ledger + platform keys" bundle: the ledger and the platform's keys and mints on it, in one frozen object
built once by the composition root from the ledger subsystem's platform setup (``central.ledger.setup``). Wallets
(balances, dev faucet) and minting take it whole; the market builds its instructions from the same setup
(``central.market.instructions``) and certificates add their own issuer key (``central.certificates.operations``).
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from central.ledger.keys import PlatformKey
from central.ledger.port import Ledger
from central.ledger.setup import ENERGY_DECIMALS, QUOTE_DECIMALS, LedgerSetup

__all__ = ["ENERGY_DECIMALS", "QUOTE_DECIMALS", "Platform", "platform_from_setup"]


@dataclass(frozen=True)
class Platform:
    ledger: Ledger
    energy_mint: Pubkey
    #: signs energy mints (never appears in logs: ``PlatformKey`` hides its secret)
    mint_authority: PlatformKey
    fee_payer: PlatformKey
    quote_mint: Pubkey | None = None
    #: only on the embedded ledger: lets an admin fund consumers with quote tokens (dev faucet)
    quote_faucet_authority: PlatformKey | None = None


def platform_from_setup(ledger: Ledger, setup: LedgerSetup, *, embedded: bool) -> Platform:
    """The ``Platform`` from the ledger subsystem's platform setup. On the embedded ledger the mint authority also
    controls the quote mint (dev faucet)."""
    return Platform(
        ledger=ledger,
        energy_mint=setup.energy_mint,
        mint_authority=setup.mint_authority,
        fee_payer=setup.fee_payer,
        quote_mint=setup.quote_mint,
        quote_faucet_authority=setup.mint_authority if embedded else None,
    )
