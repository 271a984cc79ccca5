"""Pure planning of mint units: (meter, window) mint intents -> packing units per destination wallet.

A unit mints the sum of some of one wallet's intents with ``mint_to_checked``; the wallet's first unit also creates
its energy token account if it does not exist yet (idempotent ATA creation, so a stale view is harmless). The chain
outbox packs units into transactions under the 1232-byte limit; every transaction ends with a memo naming its
windows and the Merkle root over its (meter, window) mints (``central.accounting.mint_memo``). The memo grows with every
window, so a wallet's intents are split into consecutive *parts*, each as large as still fits alone in one
transaction with its memo (measured exactly with ``central.ledger.packing.fits``): any backlog is minted, in
transactions that fit. An intent marked ``solo`` (its previous transaction failed on chain, or an admin retried it)
gets a unit of its own, so it succeeds or fails alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from central.accounting.mint_intent import MintIntent
from central.accounting.mint_memo import MintLeaf, mint_memo
from central.ledger.builder import associated_token_address, create_ata_idempotent, memo, mint_to_checked
from central.ledger.packing import Unit, fits
from central.ledger.platform import ENERGY_DECIMALS

#: Compute units with margin (embedded ledger): ATA creation ~ 22k when it creates, mint_to_checked ~ 5k.
CU_CREATE_ATA = 32_000
CU_MINT = 8_000
CU_MEMO_PER_MINT = 2_000


@dataclass(frozen=True, slots=True)
class MintAccounts:
    payer: Pubkey
    energy_mint: Pubkey
    mint_authority: Pubkey


def destination(wallet: str, energy_mint: Pubkey) -> Pubkey:
    return associated_token_address(Pubkey.from_string(wallet), energy_mint)


def mint_units(
    intents: Sequence[MintIntent],
    wallets: Mapping[uuid.UUID, str],
    accounts: MintAccounts,
    existing: Collection[Pubkey] = (),
    solo: Collection[int] = (),
) -> list[Unit]:
    """Units per destination wallet (wallets in first-seen order), each tagged with its intent ids: the wallet's
    intents in consecutive parts that each fit one transaction with their memo (the first part creates the token
    account where it is missing), then one unit per ``solo`` intent id. Intents of owners without a wallet get no
    unit (they accrue)."""
    groups: dict[str, list[MintIntent]] = {}
    for intent in intents:
        wallet = wallets.get(intent.owner_id)
        if wallet is not None:
            groups.setdefault(wallet, []).append(intent)
    nodes = {i.leaf: i.leaf.node() for g in groups.values() for i in g}
    units: list[Unit] = []
    for wallet, group in groups.items():
        owner = Pubkey.from_string(wallet)
        missing = associated_token_address(owner, accounts.energy_mint) not in existing
        batch = [i for i in group if i.id not in solo]
        create = missing
        while batch:
            size = _largest_part(batch, owner, accounts, create=create, nodes=nodes)
            units.append(_unit(batch[:size], owner, accounts, create=create))
            batch, create = batch[size:], False
        # Each solo intent alone: it must succeed or fail on its own. Solo units may land in any order, so each
        # creates the (still missing) token account itself; creation is idempotent.
        units.extend(_unit([i], owner, accounts, create=missing) for i in group if i.id in solo)
    return units


def _unit(part: Sequence[MintIntent], owner: Pubkey, accounts: MintAccounts, *, create: bool) -> Unit:
    ata = associated_token_address(owner, accounts.energy_mint)
    ixs: list[Instruction] = []
    cu = CU_MINT + CU_MEMO_PER_MINT * len(part)
    if create:
        ixs.append(create_ata_idempotent(accounts.payer, owner, accounts.energy_mint))
        cu += CU_CREATE_ATA
    ixs.append(
        mint_to_checked(
            accounts.energy_mint,
            ata,
            accounts.mint_authority,
            amount=sum(i.amount_wh for i in part),
            decimals=ENERGY_DECIMALS,
        )
    )
    return Unit(tuple(ixs), tag=tuple(i.id for i in part), compute_units=cu)


def _largest_part(
    batch: Sequence[MintIntent], owner: Pubkey, accounts: MintAccounts, *, create: bool,
    nodes: Mapping[MintLeaf, bytes],
) -> int:
    """How many of ``batch``'s first intents fit one transaction together (as one unit with its memo); at least 1
    (an intent that cannot fit even alone is left for the outbox to fail). A part's size and compute budget only
    grow with its length, so a binary search finds the largest."""

    def ok(n: int) -> bool:
        part = batch[:n]
        memo_ix = memo_instruction([i.leaf for i in part], nodes)
        return fits([_unit(part, owner, accounts, create=create)], payer=accounts.payer, trailer=lambda _: [memo_ix])

    if len(batch) == 1 or ok(len(batch)):  # one intent is a part whatever its size (the steady state: no check)
        return len(batch)
    lo, hi = 1, len(batch) - 1  # the largest fitting length is in [lo, hi] (or it is 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def memo_instruction(leaves: Sequence[MintLeaf], nodes: Mapping[MintLeaf, bytes] | None = None) -> Instruction:
    return memo(mint_memo(leaves, nodes))
