"""Escrow token account addresses (docs/decisions/0008-escrow-uniform-price-auction.md), pure.

Each market account has two escrow token accounts, one per asset, at ``create_with_seed`` addresses:
base = the platform's escrow authority, seed = ``"gtx:<asset>:<account>"`` (at most 32 bytes), owner program = SPL
Token. The escrow authority is also the token-account owner, so it alone can move escrowed tokens. Anyone can
derive a user's escrow addresses from the public account number and the authority's public key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID


class Asset(StrEnum):
    ENERGY = "energy"
    QUOTE = "quote"


def escrow_seed(account: int, asset: Asset) -> str:
    seed = f"gtx:{asset.value}:{account}"
    assert len(seed) <= 32  # account <= 2**63 - 1 has at most 19 digits
    return seed


@dataclass(frozen=True)
class EscrowAddresses:
    authority: Pubkey
    token_program: Pubkey = TOKEN_PROGRAM_ID

    def escrow(self, account: int, asset: Asset) -> Pubkey:
        return Pubkey.create_with_seed(self.authority, escrow_seed(account, asset), self.token_program)
