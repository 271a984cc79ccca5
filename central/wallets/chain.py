"""What wallets and minting need from the ledger subsystem, in one frozen object built by the composition root
(the wallets/minting plugins) from the ledger's configuration and platform keys."""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from central.ledger.keys import PlatformKey
from central.ledger.port import Ledger

ENERGY_DECIMALS = 3  # DESIGN D3: 1 token = 1 kWh, 1 base unit = 1 Wh
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
