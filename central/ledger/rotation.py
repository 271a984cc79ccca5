"""Key rotation of the fee payer and the mint authority (``gridtokenx-central keys rotate``); the certificate
issuer's is ``central.certificates.rotation``. Each rotation is resumable (``central.ledger.keystore``):

1. the role's *next* key is created in the key store (a file or a token key), unless a previous run left one;
2. what the old key controls on chain moves to the next key, signed by the old key — the fee payer's lamports are
   transferred (the old payer keeps the rent-exempt minimum), the mints' ``MintTokens`` authority is set
   (SPL ``SetAuthority``); a step that the chain already shows done is skipped;
3. the next key becomes current and the old one is kept aside as ``<role>.retired-<n>``.

Tokens minted before a rotation are untouched (they are the holders'); after the mint authority's rotation the old
key can no longer mint (the program refuses it). The mints' addresses were derived from the first mint authority,
so they are recorded (``keys_dir/mints.json``) before its first rotation. Run a rotation with central stopped: the
processes load their keys at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from central.ledger.builder import AUTHORITY_MINT_TOKENS, send_and_confirm, set_authority
from central.ledger.config import LedgerConfig
from central.ledger.errors import LedgerError
from central.ledger.keys import PlatformKey
from central.ledger.keystore import KeyStore
from central.ledger.port import Ledger
from central.ledger.setup import load_setup, record_mints
from central.ledger.tokens import parse_mint

#: Lamports left for the transfer's own fee (5000 per signature) and a margin.
FEE_MARGIN = 20_000


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the role, the old and the new public key, where the old key now is."""

    role: str
    old: Pubkey
    new: Pubkey
    retired_as: str
    moved: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        return {"role": self.role, "old": str(self.old), "new": str(self.new), "retired_as": self.retired_as,
                "moved": list(self.moved)}


async def rotate_fee_payer(config: LedgerConfig, ledger: Ledger, keys: KeyStore) -> Rotation:
    """Move the fee payer's lamports to a new key. The new payer must end with at least
    ``ledger.min_fee_payer_lamports`` (fund the old one first, or the new one directly, if it does not)."""
    old = keys.load("fee_payer")
    new = keys.next_key("fee_payer", create=True)
    assert new is not None
    moved: list[str] = []
    balance = await ledger.get_balance(old.pubkey)
    keep = await ledger.get_minimum_balance_for_rent_exemption(0) + FEE_MARGIN
    if balance > keep:
        await send_and_confirm(ledger, old, [transfer(TransferParams(
            from_pubkey=old.pubkey, to_pubkey=new.pubkey, lamports=balance - keep))])
        moved.append(f"{balance - keep} lamports")
    funded = await ledger.get_balance(new.pubkey)
    if funded < config.min_fee_payer_lamports:
        raise LedgerError(f"the new fee payer {new.pubkey} holds {funded} lamports, less than "
                          f"ledger.min_fee_payer_lamports = {config.min_fee_payer_lamports}: fund it and run the "
                          f"rotation again")
    return Rotation("fee_payer", old.pubkey, new.pubkey, keys.promote("fee_payer"), tuple(moved))


async def _move_mint_authority(ledger: Ledger, payer: PlatformKey, mint: Pubkey, old: PlatformKey,
                               new: PlatformKey) -> bool:
    account = await ledger.get_account(mint)
    info = parse_mint(account) if account is not None else None
    if account is None or info is None:
        raise LedgerError(f"mint {mint} does not exist on this ledger")
    if info.mint_authority == new.pubkey:
        return False  # done by an earlier, interrupted run
    if info.mint_authority != old.pubkey:
        raise LedgerError(f"mint {mint}'s authority is {info.mint_authority}, not the platform's mint authority")
    await send_and_confirm(ledger, payer, [set_authority(mint, old.pubkey, new.pubkey, AUTHORITY_MINT_TOKENS,
                                                         account.owner)], [old])
    return True


async def rotate_mint_authority(config: LedgerConfig, ledger: Ledger, keys: KeyStore) -> Rotation:
    """Move the ``MintTokens`` authority of the energy mint (and, on the embedded ledger where the platform created
    it, the quote mint) to a new key."""
    setup = load_setup(config, keys)
    record_mints(config, setup)  # the derivation from the mint authority will no longer find them
    old = setup.mint_authority
    new = keys.next_key("mint_authority", create=True)
    assert new is not None
    moved: list[str] = []
    mints = [("energy_mint", setup.energy_mint)]
    if config.backend == "embedded":
        mints.append(("quote_mint", setup.quote_mint))
    for name, mint in mints:
        if await _move_mint_authority(ledger, setup.fee_payer, mint, old, new):
            moved.append(f"{name} {mint}")
    return Rotation("mint_authority", old.pubkey, new.pubkey, keys.promote("mint_authority"), tuple(moved))
