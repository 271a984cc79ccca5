"""Small on-chain setup steps shared by the ledger tests (built only from the public builder API)."""

from __future__ import annotations

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
from central.ledger.port import Ledger
from central.ledger.tokens import MINT_SIZE, TOKEN_PROGRAM_ID

SOL = 10**9


async def funded(ledger: Ledger, lamports: int = 10 * SOL) -> Keypair:
    kp = Keypair()
    await ledger.request_airdrop(kp.pubkey(), lamports)
    return kp


async def new_mint(ledger: Ledger, payer: Keypair, authority: Pubkey, decimals: int = 3) -> Pubkey:
    mint = Keypair()
    rent = await ledger.get_minimum_balance_for_rent_exemption(MINT_SIZE)
    await send_and_confirm(ledger, payer, [
        create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(), lamports=rent,
                                           space=MINT_SIZE, owner=TOKEN_PROGRAM_ID)),
        initialize_mint2(mint.pubkey(), decimals, authority),
    ], [mint])
    return mint.pubkey()


async def mint_to_owner(ledger: Ledger, payer: Keypair, authority: Keypair, mint: Pubkey, owner: Pubkey,
                        amount: int, decimals: int = 3) -> Pubkey:
    ata = associated_token_address(owner, mint)
    await send_and_confirm(ledger, payer, [
        create_ata_idempotent(payer.pubkey(), owner, mint),
        mint_to_checked(mint, ata, authority.pubkey(), amount=amount, decimals=decimals),
    ], [authority])
    return ata
