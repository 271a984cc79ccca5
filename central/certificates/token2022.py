"""Token-2022 extension instructions the `solana`/`solders` packages do not build, encoded from the program's spec.

- ``MetadataPointerExtension`` (token instruction 39) sub-instruction ``Initialize`` (0): the mint's metadata lives at
  a given address; we point it at the mint itself.
- The ``spl_token_metadata_interface`` instructions, which Token-2022 implements for mints carrying the
  ``TokenMetadata`` extension: each is an 8-byte discriminator (first 8 bytes of SHA-256 of a fixed namespace string)
  followed by Borsh-encoded arguments.

Account sizes: a Token-2022 mint with extensions is the 82-byte base mint, zero padding up to the 165-byte length of
a token account (so the two kinds can never be confused), one account-type byte (1 = mint), then TLV entries (u16
type, u16 length, value). The token-metadata TLV is variable-length; Token-2022 reallocates the mint as it grows, so
the creator only has to fund the final size's rent up front.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from enum import IntEnum

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")

MINT_BASE_LEN = 82
ACCOUNT_BASE_LEN = 165
ACCOUNT_TYPE_MINT = 1
ACCOUNT_TYPE_ACCOUNT = 2
TLV_HEADER_LEN = 4
METADATA_POINTER_LEN = 64

# TokenInstruction discriminants (spl-token-2022 instruction.rs).
TOKEN_IX_SET_AUTHORITY = 6
TOKEN_IX_FREEZE_ACCOUNT = 10
TOKEN_IX_THAW_ACCOUNT = 11
TOKEN_IX_BURN_CHECKED = 15
TOKEN_IX_DEFAULT_ACCOUNT_STATE_EXTENSION = 28
TOKEN_IX_METADATA_POINTER_EXTENSION = 39
EXTENSION_INITIALIZE = 0  # sub-instruction 0 of both extensions is Initialize
AUTHORITY_MINT_TOKENS = 0
AUTHORITY_FREEZE_ACCOUNT = 1
STATE_FROZEN = 2
DEFAULT_ACCOUNT_STATE_LEN = 1


class ExtensionType(IntEnum):
    """The TLV type tags used here (spl-token-2022 ``ExtensionType``)."""

    DEFAULT_ACCOUNT_STATE = 6
    IMMUTABLE_OWNER = 7
    METADATA_POINTER = 18
    TOKEN_METADATA = 19


def _discriminator(namespace: str) -> bytes:
    return hashlib.sha256(namespace.encode()).digest()[:8]


METADATA_INITIALIZE = _discriminator("spl_token_metadata_interface:initialize_account")
METADATA_UPDATE_FIELD = _discriminator("spl_token_metadata_interface:updating_field")
METADATA_UPDATE_AUTHORITY = _discriminator("spl_token_metadata_interface:update_the_authority")


class Field(IntEnum):
    """Borsh enum tag of ``spl_token_metadata_interface::state::Field``; ``KEY`` carries a string."""

    NAME = 0
    SYMBOL = 1
    URI = 2
    KEY = 3


def borsh_string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<I", len(raw)) + raw


def optional_pubkey(key: Pubkey | None) -> bytes:
    """``OptionalNonZeroPubkey``: 32 bytes, all zero meaning None."""
    return bytes(32) if key is None else bytes(key)


def _writable(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=True)


def _readonly(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=False)


def _signer(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=True, is_writable=False)


def initialize_default_account_state_frozen(mint: Pubkey) -> Instruction:
    """New token accounts of the mint start frozen; only the freeze authority can thaw them. Precedes
    InitializeMint. Accounts: [writable] mint."""
    data = bytes([TOKEN_IX_DEFAULT_ACCOUNT_STATE_EXTENSION, EXTENSION_INITIALIZE, STATE_FROZEN])
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [_writable(mint)])


def freeze_account(account: Pubkey, mint: Pubkey, authority: Pubkey) -> Instruction:
    data = bytes([TOKEN_IX_FREEZE_ACCOUNT])
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [_writable(account), _readonly(mint), _signer(authority)])


def thaw_account(account: Pubkey, mint: Pubkey, authority: Pubkey) -> Instruction:
    data = bytes([TOKEN_IX_THAW_ACCOUNT])
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [_writable(account), _readonly(mint), _signer(authority)])


def burn_checked(account: Pubkey, mint: Pubkey, owner: Pubkey, *, amount: int, decimals: int) -> Instruction:
    data = bytes([TOKEN_IX_BURN_CHECKED]) + struct.pack("<QB", amount, decimals)
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [_writable(account), _writable(mint), _signer(owner)])


def drop_mint_authority(mint: Pubkey, current: Pubkey) -> Instruction:
    """SetAuthority(MintTokens, None): the supply is fixed for good."""
    data = bytes([TOKEN_IX_SET_AUTHORITY, AUTHORITY_MINT_TOKENS, 0])
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [_writable(mint), _signer(current)])


def initialize_metadata_pointer(mint: Pubkey, authority: Pubkey | None, metadata_address: Pubkey | None) -> Instruction:
    """Must precede InitializeMint. Accounts: [writable] mint."""
    data = (
        bytes([TOKEN_IX_METADATA_POINTER_EXTENSION, EXTENSION_INITIALIZE])
        + optional_pubkey(authority)
        + optional_pubkey(metadata_address)
    )
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [AccountMeta(mint, is_signer=False, is_writable=True)])


def initialize_token_metadata(
    mint: Pubkey, *, update_authority: Pubkey, mint_authority: Pubkey, name: str, symbol: str, uri: str
) -> Instruction:
    """Accounts: [writable] metadata (= mint), [] update authority, [] mint, [signer] mint authority."""
    data = METADATA_INITIALIZE + borsh_string(name) + borsh_string(symbol) + borsh_string(uri)
    accounts = [
        AccountMeta(mint, is_signer=False, is_writable=True),
        AccountMeta(update_authority, is_signer=False, is_writable=False),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(mint_authority, is_signer=True, is_writable=False),
    ]
    return Instruction(TOKEN_2022_PROGRAM_ID, data, accounts)


def update_field(mint: Pubkey, update_authority: Pubkey, key: str, value: str) -> Instruction:
    """Set an additional field (``Field::Key``), appending it if new. Accounts: [writable] metadata, [signer] auth."""
    data = METADATA_UPDATE_FIELD + bytes([Field.KEY]) + borsh_string(key) + borsh_string(value)
    accounts = [
        AccountMeta(mint, is_signer=False, is_writable=True),
        AccountMeta(update_authority, is_signer=True, is_writable=False),
    ]
    return Instruction(TOKEN_2022_PROGRAM_ID, data, accounts)


def freeze_authority_to(mint: Pubkey, current: Pubkey, new: Pubkey) -> Instruction:
    """SetAuthority(FreezeAccount, new): key rotation of the certificate issuer."""
    data = bytes([TOKEN_IX_SET_AUTHORITY, AUTHORITY_FREEZE_ACCOUNT, 1]) + bytes(new)
    return Instruction(TOKEN_2022_PROGRAM_ID, data, [_writable(mint), _signer(current)])


def metadata_authority_to(mint: Pubkey, current: Pubkey, new: Pubkey) -> Instruction:
    """Token-metadata ``UpdateAuthority``: the metadata's update authority becomes ``new`` (an
    ``OptionalNonZeroPubkey``: 32 bytes). Accounts: [writable] metadata (the mint), [signer] current authority."""
    data = METADATA_UPDATE_AUTHORITY + bytes(new)
    accounts = [
        AccountMeta(mint, is_signer=False, is_writable=True),
        AccountMeta(current, is_signer=True, is_writable=False),
    ]
    return Instruction(TOKEN_2022_PROGRAM_ID, data, accounts)


def token_metadata_value_len(name: str, symbol: str, uri: str, fields: Sequence[tuple[str, str]]) -> int:
    """Length of the Borsh-encoded ``TokenMetadata`` (update authority, mint, name, symbol, uri, additional)."""
    size = 32 + 32 + sum(4 + len(s.encode()) for s in (name, symbol, uri)) + 4
    return size + sum(8 + len(k.encode()) + len(v.encode()) for k, v in fields)


def mint_len_at_creation() -> int:
    """Mint size at creation: base + padding + account type + the default-account-state and metadata-pointer TLVs
    (239 bytes)."""
    return ACCOUNT_BASE_LEN + 1 + 2 * TLV_HEADER_LEN + DEFAULT_ACCOUNT_STATE_LEN + METADATA_POINTER_LEN


def mint_len_with_metadata(name: str, symbol: str, uri: str, fields: Sequence[tuple[str, str]]) -> int:
    """Final mint size once the token-metadata TLV holds every field."""
    return mint_len_at_creation() + TLV_HEADER_LEN + token_metadata_value_len(name, symbol, uri, fields)
