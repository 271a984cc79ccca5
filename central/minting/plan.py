"""Pure planning of mint transactions: pending (meter, window) intents -> packed, unsigned v0 messages.

One *unit* per destination wallet in a batch: create the wallet's energy token account if it does not exist yet
(idempotent ATA creation, so a stale view is harmless) and one ``mint_to_checked`` of the sum of that wallet's
intents. Units are packed greedily into transactions under the 1232-byte limit (``central.ledger.packing``); every
transaction ends with a memo naming its windows and the Merkle root over its (meter, window) mints
(``central.minting.memo``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from solders.hash import Hash
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from central.ledger.builder import associated_token_address, create_ata_idempotent, memo, mint_to_checked
from central.ledger.packing import Packed, Unit, pack
from central.minting.memo import MintLeaf, mint_memo
from central.wallets.chain import ENERGY_DECIMALS

#: Compute units, measured on the embedded ledger with margin: ATA creation ~ 22k (when it creates), mint ~ 5k.
CU_CREATE_ATA = 32_000
CU_MINT = 8_000
CU_MEMO_PER_MINT = 2_000


@dataclass(frozen=True, slots=True)
class MintIntent:
    id: int
    meter_id: uuid.UUID
    window_start_ms: int
    window_end_ms: int
    owner_id: uuid.UUID
    amount_wh: int
    window_root: bytes
    #: destination wallet (base58), the owner's linked wallet when the intent is submitted
    wallet: str

    @property
    def leaf(self) -> MintLeaf:
        return MintLeaf(self.meter_id, self.window_start_ms, self.window_end_ms, self.amount_wh, self.window_root)


@dataclass(frozen=True, slots=True)
class MintAccounts:
    payer: Pubkey
    energy_mint: Pubkey
    mint_authority: Pubkey


def destination(wallet: str, energy_mint: Pubkey) -> Pubkey:
    return associated_token_address(Pubkey.from_string(wallet), energy_mint)


def mint_units(intents: Sequence[MintIntent], accounts: MintAccounts, existing: set[Pubkey]) -> list[Unit]:
    """One unit per destination wallet (in first-seen order); its tag is the tuple of intents it settles."""
    groups: dict[str, list[MintIntent]] = {}
    for intent in intents:
        groups.setdefault(intent.wallet, []).append(intent)
    units = []
    for wallet, group in groups.items():
        owner = Pubkey.from_string(wallet)
        ata = associated_token_address(owner, accounts.energy_mint)
        ixs: list[Instruction] = []
        cu = CU_MINT + CU_MEMO_PER_MINT * len(group)
        if ata not in existing:
            ixs.append(create_ata_idempotent(accounts.payer, owner, accounts.energy_mint))
            cu += CU_CREATE_ATA
        ixs.append(
            mint_to_checked(
                accounts.energy_mint,
                ata,
                accounts.mint_authority,
                amount=sum(i.amount_wh for i in group),
                decimals=ENERGY_DECIMALS,
            )
        )
        units.append(Unit(tuple(ixs), tag=tuple(group), compute_units=cu))
    return units


def intents_of(units: Sequence[Unit]) -> list[MintIntent]:
    out: list[MintIntent] = []
    for u in units:
        tag = u.tag
        assert isinstance(tag, tuple)
        out.extend(tag)
    return out


def memo_trailer(units: Sequence[Unit]) -> list[Instruction]:
    return [memo(mint_memo([i.leaf for i in intents_of(units)]))]


def plan_transactions(
    intents: Sequence[MintIntent],
    accounts: MintAccounts,
    blockhash: Hash,
    existing: Collection[Pubkey] = (),
    *,
    max_units: int | None = None,
) -> list[Packed]:
    """Pack the intents into as few transactions as fit (each message still to be signed by payer and authority)."""
    units = mint_units(intents, accounts, set(existing))
    return pack(units, payer=accounts.payer, blockhash=blockhash, trailer=memo_trailer, max_units=max_units)
