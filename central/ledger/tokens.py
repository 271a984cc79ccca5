"""SPL Token / Token-2022 account layouts (the parts central reads) and program ids."""

from __future__ import annotations

from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
TOKEN_PROGRAMS = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})
MINT_SIZE = 82
TOKEN_ACCOUNT_SIZE = 165
_ACCOUNT_TYPE_ACCOUNT = 2  # Token-2022 extension account-type byte at offset 165

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "MEMO_PROGRAM_ID",
    "MINT_SIZE",
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_ACCOUNT_SIZE",
    "TOKEN_PROGRAMS",
    "TOKEN_PROGRAM_ID",
    "MintInfo",
    "TokenAccountInfo",
    "parse_mint",
    "parse_token_account",
]


@dataclass(frozen=True)
class TokenAccountInfo:
    mint: Pubkey
    owner: Pubkey
    amount: int
    frozen: bool


@dataclass(frozen=True)
class MintInfo:
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    freeze_authority: Pubkey | None


def _is_token_account(acc: Account) -> bool:
    n = len(acc.data)
    if acc.owner not in TOKEN_PROGRAMS or n < TOKEN_ACCOUNT_SIZE:
        return False
    return n == TOKEN_ACCOUNT_SIZE or (acc.owner == TOKEN_2022_PROGRAM_ID and acc.data[165] == _ACCOUNT_TYPE_ACCOUNT)


def parse_token_account(acc: Account) -> TokenAccountInfo | None:
    """None unless ``acc`` is an initialised token account."""
    if not _is_token_account(acc):
        return None
    d = acc.data
    state = d[108]
    if state == 0:
        return None
    return TokenAccountInfo(Pubkey.from_bytes(d[0:32]), Pubkey.from_bytes(d[32:64]),
                            int.from_bytes(d[64:72], "little"), state == 2)


def _coption_key(d: bytes, off: int) -> Pubkey | None:
    return Pubkey.from_bytes(d[off + 4:off + 36]) if int.from_bytes(d[off:off + 4], "little") else None


def parse_mint(acc: Account) -> MintInfo | None:
    """None unless ``acc`` is an initialised mint (SPL Token or Token-2022)."""
    d = acc.data
    if acc.owner not in TOKEN_PROGRAMS or len(d) < MINT_SIZE or _is_token_account(acc) or not d[45]:
        return None
    return MintInfo(_coption_key(d, 0), int.from_bytes(d[36:44], "little"), d[44], _coption_key(d, 46))
