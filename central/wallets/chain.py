"""What wallets and minting need from the ledger subsystem, in one frozen object built by the composition root
(built by ``central.bootstrap``) from the ledger's configuration and platform keys."""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from central.ledger.keys import PlatformKey
from central.ledger.port import Ledger
from central.ledger.setup import LedgerSetup

ENERGY_DECIMALS = 3  # docs/decisions/0003-integer-units.md: 1 token = 1 kWh, 1 base unit = 1 Wh
QUOTE_DECIMALS = 6


@dataclass(frozen=True)
class Chain:
    ledger: Ledger
    energy_mint: Pubkey
    #: signs energy mints (never appears in logs: ``PlatformKey`` hides its secret)
    mint_authority: PlatformKey
    fee_payer: PlatformKey
    quote_mint: Pubkey | None = None
    #: only on the embedded ledger: lets an admin fund consumers with quote tokens (dev faucet)
    quote_faucet_authority: PlatformKey | None = None


def chain_from_setup(ledger: Ledger, setup: LedgerSetup, *, embedded: bool) -> Chain:
    """The ``Chain`` for services, from the ledger subsystem's platform setup (``central.ledger.setup``). On the
    embedded ledger the mint authority also controls the quote mint (dev faucet)."""
    return Chain(
        ledger=ledger,
        energy_mint=setup.energy_mint,
        mint_authority=setup.mint_authority,
        fee_payer=setup.fee_payer,
        quote_mint=setup.quote_mint,
        quote_faucet_authority=setup.mint_authority if embedded else None,
    )
