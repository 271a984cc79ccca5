"""Decoding of Token-2022 mint and token-account bytes as validation needs them (pure, no I/O)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from solders.pubkey import Pubkey

from central.certificates.errors import InvalidCertificateError
from central.certificates.token2022 import (
    ACCOUNT_BASE_LEN,
    ACCOUNT_TYPE_MINT,
    MINT_BASE_LEN,
    TLV_HEADER_LEN,
    ExtensionType,
)
from central.ledger.byte_reader import ByteReader


class AccountState(IntEnum):
    UNINITIALIZED = 0
    INITIALIZED = 1
    FROZEN = 2


@dataclass(frozen=True)
class TokenMetadata:
    update_authority: Pubkey | None
    mint: Pubkey
    name: str
    symbol: str
    uri: str
    additional: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MintInfo:
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None
    metadata_pointer: Pubkey | None
    metadata: TokenMetadata | None


@dataclass(frozen=True)
class TokenAccountInfo:
    mint: Pubkey
    owner: Pubkey
    amount: int
    state: AccountState

    @property
    def frozen(self) -> bool:
        return self.state is AccountState.FROZEN


def _coption_pubkey(data: bytes, offset: int) -> Pubkey | None:
    (tag,) = struct.unpack_from("<I", data, offset)
    if tag == 0:
        return None
    if tag != 1:
        raise InvalidCertificateError(f"bad COption tag {tag}")
    return Pubkey(data[offset + 4 : offset + 36])


def _nonzero_pubkey(raw: bytes) -> Pubkey | None:
    return None if raw == bytes(32) else Pubkey(raw)


def decode_token_metadata(value: bytes) -> TokenMetadata:
    r = ByteReader(value, lambda why: InvalidCertificateError(f"token metadata: {why}"))
    update_authority = _nonzero_pubkey(r.take(32))
    mint = Pubkey(r.take(32))
    name, symbol, uri = r.string(), r.string(), r.string()
    additional = tuple((r.string(), r.string()) for _ in range(r.u32()))
    if r.pos != len(value):
        raise InvalidCertificateError("trailing bytes after token metadata")
    return TokenMetadata(update_authority, mint, name, symbol, uri, additional)


def iter_tlv(data: bytes, start: int) -> list[tuple[int, bytes]]:
    entries: list[tuple[int, bytes]] = []
    pos = start
    while pos + TLV_HEADER_LEN <= len(data):
        ext_type, length = struct.unpack_from("<HH", data, pos)
        if ext_type == 0:  # uninitialised tail
            break
        end = pos + TLV_HEADER_LEN + length
        if end > len(data):
            raise InvalidCertificateError("TLV entry runs past the account end")
        entries.append((ext_type, data[pos + TLV_HEADER_LEN : end]))
        pos = end
    return entries


def decode_mint(data: bytes) -> MintInfo:
    if len(data) < MINT_BASE_LEN:
        raise InvalidCertificateError("account too short for a mint")
    mint_authority = _coption_pubkey(data, 0)
    (supply,) = struct.unpack_from("<Q", data, 36)
    decimals = data[44]
    is_initialized = data[45] == 1
    freeze_authority = _coption_pubkey(data, 46)
    pointer: Pubkey | None = None
    metadata: TokenMetadata | None = None
    if len(data) > MINT_BASE_LEN:
        if len(data) <= ACCOUNT_BASE_LEN or data[ACCOUNT_BASE_LEN] != ACCOUNT_TYPE_MINT:
            raise InvalidCertificateError("not a Token-2022 mint with extensions")
        for ext_type, value in iter_tlv(data, ACCOUNT_BASE_LEN + 1):
            if ext_type == ExtensionType.METADATA_POINTER:
                if len(value) != 64:
                    raise InvalidCertificateError("metadata pointer entry is not 64 bytes")
                pointer = _nonzero_pubkey(value[32:64])
            elif ext_type == ExtensionType.TOKEN_METADATA:
                metadata = decode_token_metadata(value)
    return MintInfo(mint_authority, supply, decimals, is_initialized, freeze_authority, pointer, metadata)


def decode_token_account(data: bytes) -> TokenAccountInfo:
    if len(data) < ACCOUNT_BASE_LEN:
        raise InvalidCertificateError("account too short for a token account")
    (amount,) = struct.unpack_from("<Q", data, 64)
    try:
        state = AccountState(data[108])
    except ValueError as exc:
        raise InvalidCertificateError(f"bad token account state {data[108]}") from exc
    return TokenAccountInfo(Pubkey(data[0:32]), Pubkey(data[32:64]), amount, state)
