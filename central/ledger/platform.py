"""The one "ledger + platform keys" bundle: the ledger and the platform's keys and mints on it, in one frozen object
built once by the composition root from the ledger subsystem's platform setup (``central.ledger.setup``) and the
certificate issuer's key. Wallets (balances, dev faucet), minting, the market (escrow, settlement, lookup tables,
reconciliation) and certificates take it whole; their instruction builders (``central.market.instructions``,
``central.certificates.instructions``) stay pure and take the addresses they need as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from central.ledger.errors import LedgerError
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
    #: owns and signs for the market's escrow token accounts
    escrow_authority: PlatformKey | None = None
    #: the wallet whose quote token account receives the market's fees
    treasury: Pubkey | None = None
    #: the certificate issuer: mint (until sealed), freeze and metadata authority of certificate mints
    rec_issuer: PlatformKey | None = None
    #: public keys of earlier certificate issuers (rotated away): certificate mints derived from them stay authentic
    past_issuers: tuple[Pubkey, ...] = ()

    def market_keys(self) -> tuple[PlatformKey, Pubkey, Pubkey]:
        """The escrow authority, the quote mint and the treasury, which the market cannot run without."""
        if self.escrow_authority is None or self.quote_mint is None or self.treasury is None:
            raise LedgerError("the platform has no escrow authority, quote mint or treasury: no market")
        return self.escrow_authority, self.quote_mint, self.treasury

    def issuer(self) -> PlatformKey:
        """The certificate issuer's key, which certificates cannot be issued without."""
        if self.rec_issuer is None:
            raise LedgerError("the platform has no certificate issuer key")
        return self.rec_issuer


def platform_from_setup(
    ledger: Ledger, setup: LedgerSetup, *, embedded: bool, rec_issuer: PlatformKey | None = None,
    past_issuers: tuple[Pubkey, ...] = (),
) -> Platform:
    """The ``Platform`` from the ledger subsystem's platform setup (and the certificate issuer's key, loaded
    separately: it is not one of the setup's keys). On the embedded ledger the mint authority also controls the
    quote mint (dev faucet)."""
    return Platform(
        ledger=ledger,
        energy_mint=setup.energy_mint,
        mint_authority=setup.mint_authority,
        fee_payer=setup.fee_payer,
        quote_mint=setup.quote_mint,
        quote_faucet_authority=setup.mint_authority if embedded else None,
        escrow_authority=setup.escrow_authority,
        treasury=setup.treasury.pubkey,
        rec_issuer=rec_issuer,
        past_issuers=past_issuers,
    )
