"""Test helper: the platform with every key in a private SoftHSM2 token (``ledger.key_store = "pkcs11"``), set up on
an embedded (LiteSVM) ledger by the ledger subsystem's own ``init_ledger``; and the flows the HSM and rotation tests
run on it (mint through the chain outbox, settle one trade, issue one certificate)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from central.bootstrap import ISSUER_ROLE
from central.certificates.operations import CertificateLedger
from central.ledger.builder import associated_token_address, create_ata_idempotent, mint_to_checked, send_and_confirm
from central.ledger.config import HsmConfig, LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.keystore import KeyStore, open_key_store
from central.ledger.platform import Platform, platform_from_setup
from central.ledger.setup import init_ledger
from central.market.book import MarketBook
from central.market.client import sign_transaction_request
from central.market.epochs import EpochClock
from central.market.escrow import Escrow
from central.market.escrow_seeds import Asset
from central.market.instructions import MarketInstructions
from central.market.reconcile import reconcile
from central.market.settler import Settler
from central.minting.service import mint_outbox
from tests.central.accounting.acct_mint_env import (
    T0,
    account_all,
    add_user,
    energy_balance,
    energy_supply,
    feed,
    link_wallet,
    minted_wh_in_db,
    seed_site,
)
from tests.central.certificates.support import make_meta
from tests.central.market.market_fixtures import Clock, make_user
from tests.hsm_support import softhsm_token

URI_BASE = "http://127.0.0.1:8080/api/v1/certificates"


@dataclass
class HsmPlatform:
    config: LedgerConfig
    keys: KeyStore
    ledger: EmbeddedLedger
    platform: Platform


@asynccontextmanager
async def hsm_platform(tmp_path: Path, *, key_store: str = "pkcs11") -> AsyncIterator[HsmPlatform]:
    """Every platform key (mint authority, fee payer, escrow authority, treasury, REC issuer) generated in a fresh
    SoftHSM2 token (or, with ``key_store="file"``, in key files), the platform initialised on an embedded ledger."""
    with softhsm_token(tmp_path / "hsm") as token:
        config = LedgerConfig(
            keys_dir=tmp_path / "keys", create_keys=True, key_store=key_store,  # type: ignore[arg-type]
            hsm=HsmConfig(module=token.module, token_label=token.token_label, pin_file=token.pin_file),
        )
        keys = open_key_store(config)
        ledger = EmbeddedLedger(EmbeddedConfig(data_dir=None, slot_ms=20))
        try:
            setup = await init_ledger(config, ledger, keys)
            issuer = keys.load_or_create(ISSUER_ROLE, create=True)[0]
            platform = platform_from_setup(ledger, setup, embedded=True, rec_issuer=issuer)
            yield HsmPlatform(config, keys, ledger, platform)
        finally:
            await ledger.close()
            keys.close()


async def mint_some(pool: asyncpg.Pool, platform: Platform, serial: str, start_ms: int = T0, *,
                    check_supply: bool = True) -> tuple[str, int]:
    """Readings for one meter, accounted and minted through the chain outbox; (owner's wallet, Wh minted to it).
    ``check_supply``: the energy mint's supply is what the database minted (false once tokens were minted
    otherwise, e.g. to fund traders)."""
    owner = await add_user(pool)
    site = await seed_site(pool, [owner], [serial])
    await feed(pool, site, start_ms, 7, {serial: 25})  # 30 min: 2 final windows
    assert await account_all(pool) == 2
    wallet = await link_wallet(pool, owner)
    totals = await mint_outbox(pool, platform).drain()
    assert totals.confirmed == 2, totals
    minted = await minted_wh_in_db(pool, owner)
    assert minted == 25 * 6
    assert await energy_balance(platform, wallet.device_id) == minted
    if check_supply:
        assert await energy_supply(platform) == await minted_wh_in_db(pool)
    return wallet.device_id, minted


async def _fund(platform: Platform, wallet: Keypair, *, energy: int = 0, quote: int = 0) -> None:
    ixs = []
    for mint, amount, dec in ((platform.energy_mint, energy, 3), (platform.quote_mint, quote, 6)):
        assert mint is not None
        ixs.append(create_ata_idempotent(platform.fee_payer.pubkey, wallet.pubkey(), mint))
        if amount:
            ixs.append(mint_to_checked(mint, associated_token_address(wallet.pubkey(), mint),
                                       platform.mint_authority.pubkey, amount=amount, decimals=dec))
    await send_and_confirm(platform.ledger, platform.fee_payer, ixs, [platform.mint_authority])


async def settle_one_trade(pool: asyncpg.Pool, platform: Platform) -> None:
    """Two traders deposit into escrow (the escrow authority's accounts), one trade clears and settles on chain;
    balances and the escrow invariant are checked."""
    clock = Clock()
    chain = MarketInstructions.for_platform(platform)
    book = MarketBook(pool, EpochClock(60), 100, chain.addresses, now=clock)
    escrow = Escrow(pool, platform, book, confirm_wait_s=5.0)
    seller_wallet, buyer_wallet = Keypair(), Keypair()
    seller = await make_user(pool, wallet=seller_wallet)
    buyer = await make_user(pool, wallet=buyer_wallet)
    await _fund(platform, seller_wallet, energy=4000)
    await _fund(platform, buyer_wallet, quote=100_000)
    for uid, wallet, asset, amount in ((seller, seller_wallet, "energy", 4000), (buyer, buyer_wallet, "quote", 50_000)):
        req = await escrow.request_deposit(uid, asset, amount)
        done = await escrow.submit_deposit(uid, req.id, sign_transaction_request(req.transaction, wallet))
        assert done.status == "confirmed"
    await book.place(seller, "sell", 3000, 1000)
    await book.place(buyer, "buy", 3000, 1000)
    clock.advance(60)
    [epoch] = await book.clear_due()
    assert (epoch.price, epoch.volume) == (1000, 3000)
    assert await Settler(pool, platform).settle_all() == 1
    energy_ata = chain.wallet_ata(buyer_wallet.pubkey(), Asset.ENERGY)
    quote_ata = chain.wallet_ata(seller_wallet.pubkey(), Asset.QUOTE)
    got_energy = await platform.ledger.get_token_account_balance(energy_ata)
    got_quote = await platform.ledger.get_token_account_balance(quote_ata)
    assert got_energy is not None
    assert got_energy.amount == 3000
    assert got_quote is not None
    assert got_quote.amount == 3000 - 30
    report = await reconcile(pool, platform)
    assert report.mismatches == []


async def issue_certificate(platform: Platform, energy_wh: int = 1500) -> tuple[Pubkey, uuid.UUID, Pubkey]:
    """One certificate issued on chain by the platform's REC issuer; (mint, certificate id, owner wallet)."""
    ops = CertificateLedger(platform, uri_base=URI_BASE)
    owner = Keypair().pubkey()
    meta = make_meta(energy_wh)
    mint = await ops.issue(meta, owner)
    assert await ops.balance(mint, owner) == energy_wh
    return mint, meta.certificate_id, owner
