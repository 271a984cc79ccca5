"""The market's on-chain side, pure: which keys and mints, and the instructions for escrow, deposits, withdrawals
and trade settlement (docs/decisions/0003-integer-units.md, docs/decisions/0008-escrow-uniform-price-auction.md).
Nothing here does I/O and nothing here holds a key: the builders take the addresses they need (``for_platform``
reads them off the one ``Platform``); ``escrow`` and ``settler`` sign with the platform's keys and send.

Memos tie every chain movement to its database record: ``gtx:dep:<uuid>``, ``gtx:wd:<uuid>``, ``gtx:t:<trade id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from uuid import UUID

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from central.ledger.builder import (
    associated_token_address,
    create_ata_idempotent,
    create_token_account_with_seed,
    memo,
    transfer_checked,
)
from central.ledger.packing import Unit
from central.ledger.platform import Platform
from central.ledger.setup import ENERGY_DECIMALS, QUOTE_DECIMALS
from central.market.escrow_seeds import Asset, EscrowAddresses, escrow_seed


@dataclass(frozen=True)
class MarketInstructions:
    """The market's instruction builder over its addresses: ``payer`` (the platform's fee payer), ``authority``
    (the escrow authority), the mints, and ``treasury``, the wallet whose quote ATA receives fees."""

    payer: Pubkey
    authority: Pubkey
    energy_mint: Pubkey
    quote_mint: Pubkey
    treasury: Pubkey

    @classmethod
    def for_platform(cls, platform: Platform) -> MarketInstructions:
        authority, quote_mint, treasury = platform.market_keys()
        return cls(platform.fee_payer.pubkey, authority.pubkey, platform.energy_mint, quote_mint, treasury)

    @cached_property
    def addresses(self) -> EscrowAddresses:
        return EscrowAddresses(self.authority)

    @cached_property
    def _address_cache(self) -> dict[tuple[object, ...], Pubkey]:
        return {}

    def mint(self, asset: Asset) -> Pubkey:
        return self.energy_mint if asset is Asset.ENERGY else self.quote_mint

    @staticmethod
    def decimals(asset: Asset) -> int:
        return ENERGY_DECIMALS if asset is Asset.ENERGY else QUOTE_DECIMALS

    def escrow(self, account: int, asset: Asset) -> Pubkey:
        key = ("e", account, asset)
        cache = self._address_cache
        if key not in cache:
            cache[key] = self.addresses.escrow(account, asset)
        return cache[key]

    def wallet_ata(self, wallet: Pubkey, asset: Asset) -> Pubkey:
        key = ("w", wallet, asset)
        cache = self._address_cache
        if key not in cache:
            cache[key] = associated_token_address(wallet, self.mint(asset))
        return cache[key]

    @cached_property
    def treasury_ata(self) -> Pubkey:
        return associated_token_address(self.treasury, self.quote_mint)

    # ------------------------------------------------------------------------------------------- instructions

    def open_escrow(self, account: int, asset: Asset, rent_lamports: int) -> list[Instruction]:
        """Create the escrow token account (fee payer pays rent; the escrow authority signs as seed base)."""
        a = self.authority
        return create_token_account_with_seed(
            self.payer,
            a,
            escrow_seed(account, asset),
            mint=self.mint(asset),
            owner=a,
            lamports=rent_lamports,
        )

    def move(self, asset: Asset, source: Pubkey, destination: Pubkey, owner: Pubkey, amount: int) -> Instruction:
        """``amount`` of ``asset`` from ``source`` to ``destination``, signed by ``owner`` (checked transfer)."""
        return transfer_checked(
            source, self.mint(asset), destination, owner, amount=amount, decimals=self.decimals(asset)
        )

    def deposit(self, transfer_id: UUID, account: int, asset: Asset, wallet: Pubkey, amount: int) -> list[Instruction]:
        """The user's wallet moves ``amount`` from its ATA into its escrow (the wallet signs; the platform pays)."""
        return [
            self.move(asset, self.wallet_ata(wallet, asset), self.escrow(account, asset), wallet, amount),
            memo(f"gtx:dep:{transfer_id}"),
        ]

    def withdrawal(
        self, transfer_id: UUID, account: int, asset: Asset, wallet: Pubkey, amount: int
    ) -> list[Instruction]:
        return [
            create_ata_idempotent(self.payer, wallet, self.mint(asset)),
            self.move(asset, self.escrow(account, asset), self.wallet_ata(wallet, asset), self.authority, amount),
            memo(f"gtx:wd:{transfer_id}"),
        ]

    def trade_unit(
        self,
        trade_id: int,
        buyer: int,
        seller: int,
        buyer_wallet: Pubkey,
        seller_wallet: Pubkey,
        qty: int,
        value: int,
        fee: int,
        *,
        delivered: int | None = None,
        grid_fee_seller: int = 0,
        grid_fee_buyer: int = 0,
        grid_operator: Pubkey | None = None,
    ) -> Unit:
        """One trade, atomically: energy seller-escrow → buyer wallet; quote buyer-escrow → seller wallet
        (value - fee) and → treasury (fee); memo with the trade id. Destination ATAs must exist already.

        A zonal trade (docs/decisions/0017-zonal-clearing.md) moves, in the same transaction, the loss
        (``qty - delivered`` Wh of the seller's) and the grid fees (both sides', out of the buyer's quote escrow) to
        the grid operator's wallet: the seller sends ``qty``, the buyer receives ``delivered`` and pays
        ``value + grid_fee_buyer``, the seller receives ``value - grid_fee_seller - fee``."""
        auth, quote, energy = self.authority, Asset.QUOTE, Asset.ENERGY
        got = qty if delivered is None else delivered
        loss, grid_fee = qty - got, grid_fee_seller + grid_fee_buyer
        if min(got, loss, grid_fee_seller, grid_fee_buyer, fee, value - grid_fee_seller - fee) < 0:
            raise ValueError(f"trade {trade_id}: amounts out of range")
        if (loss or grid_fee) and grid_operator is None:
            raise ValueError(f"trade {trade_id}: grid fee or loss without a grid operator")
        seller_energy, buyer_quote = self.escrow(seller, energy), self.escrow(buyer, quote)
        ixs = [self.move(energy, seller_energy, self.wallet_ata(buyer_wallet, energy), auth, got)]
        if loss and grid_operator is not None:
            ixs.append(self.move(energy, seller_energy, self.wallet_ata(grid_operator, energy), auth, loss))
        if value - grid_fee_seller - fee > 0:
            ixs.append(self.move(quote, buyer_quote, self.wallet_ata(seller_wallet, quote), auth,
                                 value - grid_fee_seller - fee))
        if fee > 0:
            ixs.append(self.move(quote, buyer_quote, self.treasury_ata, auth, fee))
        if grid_fee and grid_operator is not None:
            ixs.append(self.move(quote, buyer_quote, self.wallet_ata(grid_operator, quote), auth, grid_fee))
        ixs.append(memo(f"gtx:t:{trade_id}"))
        return Unit(tuple(ixs), tag=trade_id)
