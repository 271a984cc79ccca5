"""Test helper: an embedded (LiteSVM) ledger with a fee payer, an energy mint (3 decimals) and a quote mint (6)."""

from __future__ import annotations

from pathlib import Path

from solders.keypair import Keypair
from solders.system_program import CreateAccountParams, create_account

from central.ledger.builder import initialize_mint2, send_and_confirm
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.keys import PlatformKey
from central.ledger.tokens import MINT_SIZE, TOKEN_PROGRAM_ID
from central.wallets.chain import ENERGY_DECIMALS, QUOTE_DECIMALS, Chain


async def create_mint(ledger: EmbeddedLedger, payer: PlatformKey, authority: PlatformKey, decimals: int) -> Keypair:
    mint = Keypair()
    lamports = await ledger.get_minimum_balance_for_rent_exemption(MINT_SIZE)
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey,
                to_pubkey=mint.pubkey(),
                lamports=lamports,
                space=MINT_SIZE,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_mint2(mint.pubkey(), decimals, authority.pubkey),
    ]
    await send_and_confirm(ledger, payer, ixs, [mint])
    return mint


async def embedded_chain(data_dir: Path | None = None, slot_ms: int = 20) -> Chain:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=data_dir, slot_ms=slot_ms))
    payer, authority, quote_auth = (PlatformKey.generate(n) for n in ("fee_payer", "mint_authority", "quote"))
    await ledger.request_airdrop(payer.pubkey, 100 * 10**9)
    energy = await create_mint(ledger, payer, authority, ENERGY_DECIMALS)
    quote = await create_mint(ledger, payer, quote_auth, QUOTE_DECIMALS)
    return Chain(
        ledger=ledger,
        energy_mint=energy.pubkey(),
        mint_authority=authority,
        fee_payer=payer,
        quote_mint=quote.pubkey(),
        quote_faucet_authority=quote_auth,
    )
