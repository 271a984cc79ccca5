"""Shared by the outbox tests and the crash worker: schema, a mint world on the ledger, and a
unit builder that mints each intent's amount into its owner's associated token account."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from central.chain.outbox import ChainOutbox, Intent, OutboxConfig
from central.ledger.builder import associated_token_address, memo, mint_to_owner
from central.ledger.keys import FileKey, PlatformKey
from central.ledger.packing import Unit
from central.ledger.port import Ledger
from central.ledger.tokens import parse_mint

from .helpers import new_mint

MIGRATION = Path(__file__).resolve().parents[3] / "central" / "db" / "migrations" / "0020_chain_outbox.sql"
KIND = "mint"


async def apply_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(MIGRATION.read_text())
    finally:
        await conn.close()


@dataclass(frozen=True)
class MintWorld:
    payer: PlatformKey
    authority: PlatformKey
    mint: Pubkey
    decimals: int = 3

    def to_json(self) -> str:
        return json.dumps({"payer": list(bytes(self.payer.signer)), "authority": list(bytes(self.authority.signer)),
                           "mint": str(self.mint)})

    @classmethod
    def from_json(cls, text: str) -> MintWorld:
        d = json.loads(text)
        return cls(FileKey("fee_payer", Keypair.from_bytes(bytes(d["payer"]))),
                   FileKey("mint_authority", Keypair.from_bytes(bytes(d["authority"]))),
                   Pubkey.from_string(d["mint"]))


async def make_world(ledger: Ledger) -> MintWorld:
    payer = PlatformKey.generate("fee_payer")
    authority = PlatformKey.generate("mint_authority")
    await ledger.request_airdrop(payer.pubkey, 1_000 * 10**9)
    mint = await new_mint(ledger, payer.signer, authority.pubkey, decimals=3)
    return MintWorld(payer, authority, mint)


def mint_builder(world: MintWorld):  # type: ignore[no-untyped-def]
    async def build(intents: Sequence[Intent]) -> list[Unit]:
        units = []
        for it in intents:
            owner = Pubkey.from_string(it.payload["owner"])
            units.append(Unit(mint_to_owner(world.payer.pubkey, owner, world.mint, world.authority.pubkey,
                                            amount=int(it.payload["amount"]), decimals=int(it.payload["decimals"])),
                              tag=it.id, compute_units=35_000))
        return units

    return build


def trailer(units: Sequence[Unit]) -> list[Instruction]:
    return [memo(f"gtx:mint:{len(units)}")]


def make_outbox(pool: asyncpg.Pool, ledger: Ledger, world: MintWorld, *, hook=None,  # type: ignore[no-untyped-def]
                **cfg) -> ChainOutbox:
    return ChainOutbox(pool, ledger, OutboxConfig(kind=KIND, **cfg), payer=world.payer, signers=[world.authority],
                       build=mint_builder(world), trailer=trailer, hook=hook)


async def supply(ledger: Ledger, mint: Pubkey) -> int:
    acc = await ledger.get_account(mint)
    assert acc is not None
    info = parse_mint(acc)
    assert info is not None
    return info.supply


async def balance_of(ledger: Ledger, owner: Pubkey, mint: Pubkey) -> int:
    bal = await ledger.get_token_account_balance(associated_token_address(owner, mint))
    return bal.amount if bal is not None else 0
