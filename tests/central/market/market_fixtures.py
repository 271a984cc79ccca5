"""Shared helpers for the market tests: a migrated real PostgreSQL, users with linked wallets, a settable clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from central.ledger.builder import (
    associated_token_address,
    create_ata_idempotent,
    initialize_mint2,
    mint_to_checked,
    send_and_confirm,
)
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.keys import FileKey, PlatformKey
from central.ledger.platform import Platform
from central.ledger.tokens import MINT_SIZE, TOKEN_PROGRAM_ID
from central.market.book import MarketBook
from central.market.client import sign_transaction_request
from central.market.config import ZonesConfig
from central.market.epochs import EpochClock
from central.market.escrow import Escrow
from central.market.escrow_seeds import Asset
from central.market.instructions import MarketInstructions

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    t: datetime = T0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


async def make_user(pool: asyncpg.Pool, role: str = "prosumer", wallet: Keypair | None = None) -> uuid.UUID:
    """A user row (central-core's table) and, unless ``wallet`` is None and ``link`` false, a linked wallet row."""
    uid = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'x', $3)",
            uid,
            f"{uid.hex}@example.test",
            role,
        )
        if wallet is not None:
            nonce = uuid.uuid4().bytes
            await conn.execute(
                "INSERT INTO wallet_link_nonces (nonce, user_id, wallet, expires_at, used_at) "
                "VALUES ($1, $2, $3, now() + interval '1 hour', now())",
                nonce,
                uid,
                str(wallet.pubkey()),
            )
            await conn.execute(
                "INSERT INTO wallets (user_id, address, linked_at, link_nonce) VALUES ($1, $2, now(), $3)",
                uid,
                str(wallet.pubkey()),
                nonce,
            )
    return uid


async def give_meter(pool: asyncpg.Pool, owner: uuid.UUID, serial: str) -> None:
    """A meter (on its own device) owned by ``owner``: what places the owner's orders in a grid zone."""
    device = Keypair().pubkey()
    await pool.execute(
        "INSERT INTO devices (device_id, public_key, status) VALUES ($1, $2, 'verified')", str(device), bytes(device)
    )
    await pool.execute(
        "INSERT INTO meters (id, serial, device_id, model, protocol, meter_key_hash, owner_id, claimed_at) "
        "VALUES ($1, $2, $3, 'test', 'modbus', 'x', $4, now())",
        uuid.uuid4(), serial, str(device), owner,
    )


@dataclass
class Market:
    """A complete market on real PostgreSQL and an embedded (in-memory LiteSVM) ledger."""

    pool: asyncpg.Pool
    ledger: EmbeddedLedger
    platform: Platform
    chain: MarketInstructions
    mint_authority: Keypair
    book: MarketBook
    escrow: Escrow
    clock: Clock

    async def fund_wallet(self, wallet: Keypair, *, energy: int = 0, quote: int = 0) -> None:
        """Mint tokens into the wallet's ATAs (as minting would)."""
        ixs = []
        for mint, amount, dec in ((self.chain.energy_mint, energy, 3), (self.chain.quote_mint, quote, 6)):
            ixs.append(create_ata_idempotent(self.chain.payer, wallet.pubkey(), mint))
            if amount:
                ixs.append(
                    mint_to_checked(
                        mint,
                        associated_token_address(wallet.pubkey(), mint),
                        self.mint_authority.pubkey(),
                        amount=amount,
                        decimals=dec,
                    )
                )
        await send_and_confirm(self.ledger, self.platform.fee_payer, ixs, [self.mint_authority])

    async def token_balance(self, address: Pubkey) -> int:
        b = await self.ledger.get_token_account_balance(address)
        return 0 if b is None else b.amount

    async def wallet_balance(self, wallet: Keypair, asset: Asset) -> int:
        return await self.token_balance(self.chain.wallet_ata(wallet.pubkey(), asset))

    async def trader(self, *, energy: int = 0, quote: int = 0) -> tuple[uuid.UUID, Keypair]:
        wallet = Keypair()
        uid = await make_user(self.pool, wallet=wallet)
        await self.fund_wallet(wallet, energy=energy, quote=quote)
        return uid, wallet

    async def deposit(self, uid: uuid.UUID, wallet: Keypair, asset: str, amount: int) -> str:
        req = await self.escrow.request_deposit(uid, asset, amount)
        done = await self.escrow.submit_deposit(uid, req.id, sign_transaction_request(req.transaction, wallet))
        return done.status


async def new_mint(ledger: EmbeddedLedger, payer: PlatformKey, authority: Pubkey, decimals: int) -> Pubkey:
    mint = Keypair()
    rent = await ledger.get_minimum_balance_for_rent_exemption(MINT_SIZE)
    await send_and_confirm(
        ledger,
        payer,
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer.pubkey,
                    to_pubkey=mint.pubkey(),
                    lamports=rent,
                    space=MINT_SIZE,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(mint.pubkey(), decimals, authority),
        ],
        [mint],
    )
    return mint.pubkey()


async def make_market(
    pool: asyncpg.Pool, *, epoch_s: int = 60, fee_bps: int = 100, slot_ms: int = 0, zoning: ZonesConfig | None = None
) -> AsyncIterator[Market]:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=None, slot_ms=slot_ms))
    try:
        fee_payer = PlatformKey.generate("fee-payer")
        await ledger.request_airdrop(fee_payer.pubkey, 1000 * 10**9)
        mint_authority = Keypair()
        energy = await new_mint(ledger, fee_payer, mint_authority.pubkey(), 3)
        quote = await new_mint(ledger, fee_payer, mint_authority.pubkey(), 6)
        treasury = Keypair().pubkey()
        platform = Platform(
            ledger, energy, FileKey("mint_authority", mint_authority), fee_payer, quote_mint=quote,
            escrow_authority=PlatformKey.generate("escrow"), treasury=treasury,
        )
        chain = MarketInstructions.for_platform(platform)
        await send_and_confirm(ledger, fee_payer, [create_ata_idempotent(fee_payer.pubkey, treasury, quote)])
        clock = Clock()
        book = MarketBook(pool, EpochClock(epoch_s), fee_bps, chain.addresses, now=clock, zoning=zoning)
        escrow = Escrow(pool, platform, book, confirm_wait_s=5.0)
        yield Market(pool, ledger, platform, chain, mint_authority, book, escrow, clock)
    finally:
        await ledger.close()
