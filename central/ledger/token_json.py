"""``jsonParsed`` account data, in the shapes a Solana node's account decoder produces (agave ``account-decoder``):
SPL Token and Token-2022 mints, token accounts and multisigs (Token-2022 extensions included), and address lookup
tables. The base layouts are read with solders' own ``solders.token.state`` parsers; the Token-2022 TLV extensions
(which solders does not decode) are read here. ``parsed_account`` returns None for anything else, and the caller
falls back to ``base64`` as a node does.
"""

from __future__ import annotations

import struct
from typing import Any

from solders.account import Account
from solders.address_lookup_table_account import AddressLookupTable
from solders.pubkey import Pubkey
from solders.token.state import Mint, Multisig, TokenAccount

from central.ledger.byte_reader import ByteReader
from central.ledger.tokens import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from central.ledger.transaction_json import ui_amount

ADDRESS_LOOKUP_TABLE_PROGRAM_ID = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")
_MINT_LEN = 82
_ACCOUNT_LEN = 165
_MULTISIG_LEN = 355
_U64_MAX = 2**64 - 1
_STATE_BYTES = {0: "uninitialized", 1: "initialized", 2: "frozen"}


def program_name(program: Pubkey) -> str:
    return "spl-token" if program == TOKEN_PROGRAM_ID else "spl-token-2022"


def _key(raw: bytes) -> str | None:
    """An ``OptionalNonZeroPubkey``: all zeroes is None."""
    return None if raw == bytes(32) else str(Pubkey.from_bytes(raw))


def _token_metadata(value: bytes) -> dict[str, object]:
    r = ByteReader(value)
    update_authority = _key(r.take(32))
    mint = str(Pubkey.from_bytes(r.take(32)))
    name, symbol, uri = r.string(), r.string(), r.string()
    additional = [[r.string(), r.string()] for _ in range(r.u32())]
    return {"updateAuthority": update_authority, "mint": mint, "name": name, "symbol": symbol, "uri": uri,
            "additionalMetadata": additional}


def _extension(ext_type: int, value: bytes) -> dict[str, object]:
    """One TLV entry as ``UiExtension`` (``{"extension": name, "state": ...}``); unknown ones are
    ``unparseableExtension`` as on a node."""
    simple = {7: "immutableOwner", 9: "nonTransferable", 13: "nonTransferableAccount"}
    if ext_type in simple:
        return {"extension": simple[ext_type]}
    state: dict[str, object]
    if ext_type == 3 and len(value) == 32:
        name, state = "mintCloseAuthority", {"closeAuthority": _key(value)}
    elif ext_type == 6 and len(value) == 1 and value[0] in _STATE_BYTES:
        name, state = "defaultAccountState", {"accountState": _STATE_BYTES[value[0]]}
    elif ext_type == 8 and len(value) == 1:
        name, state = "memoTransfer", {"requireIncomingTransferMemos": bool(value[0])}
    elif ext_type == 11 and len(value) == 1:
        name, state = "cpiGuard", {"lockCpi": bool(value[0])}
    elif ext_type == 12 and len(value) == 32:
        name, state = "permanentDelegate", {"delegate": _key(value)}
    elif ext_type in (14, 18, 20, 22) and len(value) == 64:
        name, field = {14: ("transferHook", "programId"), 18: ("metadataPointer", "metadataAddress"),
                       20: ("groupPointer", "groupAddress"), 22: ("groupMemberPointer", "memberAddress")}[ext_type]
        state = {"authority": _key(value[:32]), field: _key(value[32:])}
    elif ext_type == 15 and len(value) == 1:
        name, state = "transferHookAccount", {"transferring": bool(value[0])}
    elif ext_type == 19:
        try:
            name, state = "tokenMetadata", _token_metadata(value)
        except (ValueError, UnicodeDecodeError):
            return {"extension": "unparseableExtension"}
    else:
        return {"extension": "unparseableExtension"}
    return {"extension": name, "state": state}


def extensions(data: bytes, account_type: int) -> list[dict[str, object]] | None:
    """The Token-2022 extensions of a mint (``account_type`` 1) or account (2); None when the data carries none,
    or is not of that type."""
    if len(data) <= _ACCOUNT_LEN or data[_ACCOUNT_LEN] != account_type:
        return None
    out: list[dict[str, object]] = []
    pos = _ACCOUNT_LEN + 1
    while pos + 4 <= len(data):
        ext_type, length = struct.unpack_from("<HH", data, pos)
        if ext_type == 0:
            break
        end = pos + 4 + length
        if end > len(data):
            return None
        out.append(_extension(ext_type, data[pos + 4:end]))
        pos = end
    return out


def _parsed_mint(data: bytes) -> dict[str, object]:
    mint = Mint.from_bytes(data[:_MINT_LEN])
    info: dict[str, object] = {
        "mintAuthority": str(mint.mint_authority) if mint.mint_authority is not None else None,
        "supply": str(mint.supply), "decimals": mint.decimals, "isInitialized": mint.is_initialized,
        "freezeAuthority": str(mint.freeze_authority) if mint.freeze_authority is not None else None}
    ext = extensions(data, 1)
    if ext is not None:
        info["extensions"] = ext
    return {"type": "mint", "info": info}


def _parsed_account(data: bytes, decimals: int | None) -> dict[str, object] | None:
    acc = TokenAccount.from_bytes(data[:_ACCOUNT_LEN])
    if decimals is None:  # a node cannot parse a token account whose mint it cannot read: it falls back too
        return None
    info: dict[str, object] = {"isNative": acc.is_native is not None, "mint": str(acc.mint), "owner": str(acc.owner),
                               "state": _STATE_BYTES[int(acc.state)], "tokenAmount": ui_amount(acc.amount, decimals)}
    if acc.delegate is not None:
        info["delegate"] = str(acc.delegate)
        info["delegatedAmount"] = ui_amount(acc.delegated_amount, decimals)
    if acc.is_native is not None:
        info["rentExemptReserve"] = ui_amount(acc.is_native, decimals)
    if acc.close_authority is not None:
        info["closeAuthority"] = str(acc.close_authority)
    ext = extensions(data, 2)
    if ext is not None:
        info["extensions"] = ext
    return {"type": "account", "info": info}


def _parsed_multisig(data: bytes) -> dict[str, object]:
    ms = Multisig.from_bytes(data[:_MULTISIG_LEN])
    return {"type": "multisig", "info": {
        "numRequiredSigners": ms.m, "numValidSigners": ms.n, "isInitialized": ms.is_initialized,
        "signers": [str(s) for s in ms.signers[:ms.n]]}}


def token_account_kind(acc: Account) -> str | None:
    """"mint", "account", "multisig" or None for an SPL Token / Token-2022 account."""
    n = len(acc.data)
    if acc.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
        return None
    if n == _ACCOUNT_LEN:
        return "account"
    if n == _MINT_LEN:
        return "mint"
    if n == _MULTISIG_LEN:
        return "multisig"
    if acc.owner == TOKEN_2022_PROGRAM_ID and n > _ACCOUNT_LEN:
        return {1: "mint", 2: "account"}.get(acc.data[_ACCOUNT_LEN])
    return None


def mint_of(acc: Account) -> Pubkey | None:
    """The mint of a token account (for its decimals)."""
    return Pubkey.from_bytes(acc.data[:32]) if token_account_kind(acc) == "account" else None


def parsed_token(acc: Account, decimals: int | None) -> dict[str, object] | None:
    """``{"type": ..., "info": ...}`` of a token program account, or None (not one, or not parseable)."""
    kind = token_account_kind(acc)
    try:
        if kind == "mint":
            return _parsed_mint(acc.data)
        if kind == "account":
            return _parsed_account(acc.data, decimals)
        if kind == "multisig":
            return _parsed_multisig(acc.data)
    except ValueError:
        return None
    return None


def _parsed_lookup_table(data: bytes) -> dict[str, object] | None:
    try:
        table = AddressLookupTable.deserialize(data)
    except ValueError:
        return None
    meta = table.meta
    authority = meta.authority
    return {"type": "lookupTable", "info": {
        "deactivationSlot": str(meta.deactivation_slot), "lastExtendedSlot": str(meta.last_extended_slot),
        "lastExtendedSlotStartIndex": meta.last_extended_slot_start_index,
        **({"authority": str(authority)} if authority is not None else {}),
        "addresses": [str(a) for a in table.addresses]}}


def parsed_account(acc: Account, decimals: int | None) -> dict[str, Any] | None:
    """The ``data`` field of a ``jsonParsed`` account (``{"program", "parsed", "space"}``), or None when this
    account has no parser (the caller answers base64)."""
    if acc.owner in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
        parsed = parsed_token(acc, decimals)
        program = program_name(acc.owner)
    elif acc.owner == ADDRESS_LOOKUP_TABLE_PROGRAM_ID:
        parsed = _parsed_lookup_table(acc.data)
        program = "address-lookup-table"
    else:
        return None
    if parsed is None:
        return None
    return {"program": program, "parsed": parsed, "space": len(acc.data)}
