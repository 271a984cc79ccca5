"""``jsonParsed`` instructions, in the shapes a Solana node's transaction-status parser produces (agave
``transaction-status``'s ``parse_instruction``): ``{"program", "programId", "parsed": {"type", "info"}, "stackHeight"}``
for the programs it knows (System, SPL Token, Token-2022, Associated Token Account, Memo), the raw form
``{"programId", "accounts", "data", "stackHeight"}`` for anything else or anything that does not decode.

Token amounts in parsed token instructions are strings for ``amount`` (``transfer``, ``mintTo``, ``burn``,
``approve``) and ``UiTokenAmount`` for the ``*Checked`` forms, as on a node.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from central.ledger.token_json import program_name
from central.ledger.tokens import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)
from central.ledger.transaction_json import b58encode, ui_amount

MEMO_V1_PROGRAM_ID = Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
_AUTHORITY_TYPES = ("mintTokens", "freezeAccount", "accountOwner", "closeAccount", "transferFeeConfig",
                    "withheldWithdraw", "closeMint", "interestRate", "permanentDelegate",
                    "confidentialTransferMint", "transferHookProgramId", "confidentialTransferFeeConfig",
                    "metadataPointer", "groupPointer", "groupMemberPointer", "scaledUiAmount", "pause")
#: sha256("spl_token_metadata_interface:initialize_account")[:8]
_METADATA_INITIALIZE = bytes.fromhex("d2e11ea258b84d8d")


class _UnparsedError(Exception):
    """The instruction does not decode as its program's: shown raw."""


def _u64(data: bytes, off: int) -> int:
    if len(data) < off + 8:
        raise _UnparsedError
    return int(struct.unpack_from("<Q", data, off)[0])


def _acc(accounts: Sequence[str], i: int) -> str:
    if i >= len(accounts):
        raise _UnparsedError
    return accounts[i]


def _opt_key(data: bytes, off: int) -> tuple[str | None, int]:
    """A ``COption<Pubkey>`` as instruction data encodes it (u8 tag, then 32 bytes when present)."""
    if len(data) <= off:
        raise _UnparsedError
    if data[off] == 0:
        return None, off + 1
    if len(data) < off + 33:
        raise _UnparsedError
    return str(Pubkey.from_bytes(data[off + 1:off + 33])), off + 33


def _signer_or_multisig(info: dict[str, object], accounts: Sequence[str], i: int, name: str) -> None:
    """A node names the authority ``<name>`` when one signer, ``multisig<Name>`` + ``signers`` when several."""
    if len(accounts) > i + 1:
        info["multisig" + name[0].upper() + name[1:]] = _acc(accounts, i)
        info["signers"] = list(accounts[i + 1:])
    else:
        info[name] = _acc(accounts, i)


#: The token instructions that move or allow an amount: tag -> (type, the accounts before the authority in their order,
#: the authority's name). 3, 4, 7, 8 carry the amount (a string); their checked forms 12 to 15 the decimals too.
_AMOUNT_INSTRUCTIONS = {
    3: ("transfer", ("source", "destination"), "authority"),
    4: ("approve", ("source", "delegate"), "owner"),
    7: ("mintTo", ("mint", "account"), "mintAuthority"),
    8: ("burn", ("account", "mint"), "authority"),
    12: ("transferChecked", ("source", "mint", "destination"), "authority"),
    13: ("approveChecked", ("source", "mint", "delegate"), "owner"),
    14: ("mintToChecked", ("mint", "account"), "mintAuthority"),
    15: ("burnChecked", ("account", "mint"), "authority"),
}


def _amount_instruction(tag: int, accounts: Sequence[str], amount_key: str,
                        amount: object) -> tuple[str, dict[str, object]]:
    name, roles, authority = _AMOUNT_INSTRUCTIONS[tag]
    info: dict[str, object] = {role: _acc(accounts, i) for i, role in enumerate(roles)}
    info[amount_key] = amount
    _signer_or_multisig(info, accounts, len(roles), authority)
    return name, info


def _token(data: bytes, accounts: Sequence[str]) -> tuple[str, dict[str, object]]:  # noqa: PLR0911, PLR0912 - one branch per instruction
    if not data:
        raise _UnparsedError
    tag = data[0]
    a = accounts
    info: dict[str, object]
    if tag in (0, 20):  # initializeMint, initializeMint2
        if len(data) < 35:
            raise _UnparsedError
        freeze, _ = _opt_key(data, 34)
        info = {"mint": _acc(a, 0), "decimals": data[1], "mintAuthority": str(Pubkey.from_bytes(data[2:34]))}
        if tag == 0:
            info["rentSysvar"] = _acc(a, 1)
        if freeze is not None:
            info["freezeAuthority"] = freeze
        return ("initializeMint" if tag == 0 else "initializeMint2"), info
    if tag == 1:
        return "initializeAccount", {"account": _acc(a, 0), "mint": _acc(a, 1), "owner": _acc(a, 2),
                                     "rentSysvar": _acc(a, 3)}
    if tag in (16, 18):
        if len(data) < 33:
            raise _UnparsedError
        info = {"account": _acc(a, 0), "mint": _acc(a, 1), "owner": str(Pubkey.from_bytes(data[1:33]))}
        if tag == 16:
            info["rentSysvar"] = _acc(a, 2)
        return ("initializeAccount2" if tag == 16 else "initializeAccount3"), info
    if tag in (3, 4, 7, 8):  # transfer, approve, mintTo, burn (unchecked: amount as a string)
        return _amount_instruction(tag, a, "amount", str(_u64(data, 1)))
    if tag == 5:
        info = {"source": _acc(a, 0)}
        _signer_or_multisig(info, a, 1, "owner")
        return "revoke", info
    if tag == 6:
        if len(data) < 2 or data[1] >= len(_AUTHORITY_TYPES):
            raise _UnparsedError
        new, _ = _opt_key(data, 2)
        kind = _AUTHORITY_TYPES[data[1]]
        info = {"mint" if kind in ("mintTokens", "freezeAccount", "closeMint", "metadataPointer") else "account":
                _acc(a, 0), "authorityType": kind, "newAuthority": new}
        _signer_or_multisig(info, a, 1, "authority")
        return "setAuthority", info
    if tag in (9, 10, 11):
        name, second = {9: ("closeAccount", "destination"), 10: ("freezeAccount", "mint"),
                        11: ("thawAccount", "mint")}[tag]
        info = {"account": _acc(a, 0), second: _acc(a, 1)}
        _signer_or_multisig(info, a, 2, "owner" if tag == 9 else "freezeAuthority")
        return name, info
    if tag in (12, 13, 14, 15):  # the checked forms carry decimals: amounts as UiTokenAmount
        if len(data) < 10:
            raise _UnparsedError
        return _amount_instruction(tag, a, "tokenAmount", ui_amount(_u64(data, 1), data[9]))
    return _token_extension(tag, data, a)


def _token_extension(tag: int, data: bytes, a: Sequence[str]) -> tuple[str, dict[str, object]]:  # noqa: PLR0911, PLR0912 - one return per instruction
    """The Token-2022 additions (and ``syncNative``) of ``_token``."""
    info: dict[str, object]
    if tag == 17:
        return "syncNative", {"account": _acc(a, 0)}
    if tag == 21:
        return "getAccountDataSize", {"mint": _acc(a, 0)}
    if tag == 22:
        return "initializeImmutableOwner", {"account": _acc(a, 0)}
    if tag == 25:
        close, _ = _opt_key(data, 1)
        return "initializeMintCloseAuthority", {"mint": _acc(a, 0), "newAuthority": close}
    if tag == 28 and len(data) >= 3 and data[1] == 0:
        states = {0: "uninitialized", 1: "initialized", 2: "frozen"}
        if data[2] not in states:
            raise _UnparsedError
        return "initializeDefaultAccountState", {"mint": _acc(a, 0), "accountState": states[data[2]]}
    if tag == 39 and len(data) >= 66 and data[1] == 0:
        def nz(raw: bytes) -> str | None:
            return None if raw == bytes(32) else str(Pubkey.from_bytes(raw))

        info = {"mint": _acc(a, 0)}
        authority, address = nz(data[2:34]), nz(data[34:66])
        if authority is not None:
            info["authority"] = authority
        if address is not None:
            info["metadataAddress"] = address
        return "initializeMetadataPointer", info
    if data[:8] == _METADATA_INITIALIZE:
        pos = 8
        fields = []
        for _ in range(3):
            if len(data) < pos + 4:
                raise _UnparsedError
            (n,) = struct.unpack_from("<I", data, pos)
            try:
                fields.append(data[pos + 4:pos + 4 + n].decode())
            except UnicodeDecodeError:
                raise _UnparsedError from None
            pos += 4 + n
        return "initializeTokenMetadata", {"metadata": _acc(a, 0), "updateAuthority": _acc(a, 1),
                                           "mint": _acc(a, 2), "mintAuthority": _acc(a, 3), "name": fields[0],
                                           "symbol": fields[1], "uri": fields[2]}
    raise _UnparsedError


def _system(data: bytes, accounts: Sequence[str]) -> tuple[str, dict[str, object]]:
    if len(data) < 4:
        raise _UnparsedError
    (tag,) = struct.unpack_from("<I", data, 0)
    a = accounts
    if tag == 0 and len(data) >= 52:
        lamports, space = struct.unpack_from("<QQ", data, 4)
        return "createAccount", {"source": _acc(a, 0), "newAccount": _acc(a, 1), "lamports": lamports,
                                 "space": space, "owner": str(Pubkey.from_bytes(data[20:52]))}
    if tag == 1 and len(data) >= 36:
        return "assign", {"account": _acc(a, 0), "owner": str(Pubkey.from_bytes(data[4:36]))}
    if tag == 2 and len(data) >= 12:
        return "transfer", {"source": _acc(a, 0), "destination": _acc(a, 1), "lamports": _u64(data, 4)}
    if tag == 3 and len(data) >= 44:
        (n,) = struct.unpack_from("<Q", data, 36)
        seed_end = 44 + n
        if len(data) < seed_end + 48:
            raise _UnparsedError
        lamports, space = struct.unpack_from("<QQ", data, seed_end)
        try:
            seed = data[44:seed_end].decode()
        except UnicodeDecodeError:
            raise _UnparsedError from None
        return "createAccountWithSeed", {
            "source": _acc(a, 0), "newAccount": _acc(a, 1), "base": str(Pubkey.from_bytes(data[4:36])),
            "seed": seed, "lamports": lamports, "space": space,
            "owner": str(Pubkey.from_bytes(data[seed_end + 16:seed_end + 48]))}
    if tag == 8 and len(data) >= 12:
        return "allocate", {"account": _acc(a, 0), "space": _u64(data, 4)}
    raise _UnparsedError


def _associated(data: bytes, accounts: Sequence[str]) -> tuple[str, dict[str, object]]:
    kinds = {b"": "create", b"\x00": "create", b"\x01": "createIdempotent"}
    if data not in kinds:
        raise _UnparsedError
    a = accounts
    return kinds[data], {"source": _acc(a, 0), "account": _acc(a, 1), "wallet": _acc(a, 2), "mint": _acc(a, 3),
                         "systemProgram": _acc(a, 4), "tokenProgram": _acc(a, 5)}


def _raw(program: str, accounts: Sequence[str], data: bytes, stack_height: int | None) -> dict[str, object]:
    return {"programId": program, "accounts": list(accounts), "data": b58encode(data), "stackHeight": stack_height}


def parsed_instruction(program_id: Pubkey, accounts: Sequence[str], data: bytes,
                       stack_height: int | None = None) -> dict[str, object]:
    """One instruction (its program, account addresses and data) as a node's ``jsonParsed`` shows it."""
    program = str(program_id)
    try:
        if program_id in (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID):
            try:
                text = data.decode()
            except UnicodeDecodeError:
                raise _UnparsedError from None
            return {"program": "spl-memo", "programId": program, "parsed": text, "stackHeight": stack_height}
        if program_id in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            name, kind, info = program_name(program_id), *_token(data, accounts)
        elif program_id == SYSTEM_PROGRAM_ID:
            name, kind, info = "system", *_system(data, accounts)
        elif program_id == ASSOCIATED_TOKEN_PROGRAM_ID:
            name, kind, info = "spl-associated-token-account", *_associated(data, accounts)
        else:
            return _raw(program, accounts, data, stack_height)
    except _UnparsedError:
        return _raw(program, accounts, data, stack_height)
    return {"program": name, "programId": program, "parsed": {"type": kind, "info": info}, "stackHeight": stack_height}


def memo_of(program_ids: Sequence[Pubkey], datas: Sequence[bytes]) -> str | None:
    """The ``memo`` field of ``getSignaturesForAddress``: every memo instruction's text as ``[len] text``, joined
    with ``; `` (None when there is none)."""
    memos = [f"[{len(d)}] {d.decode(errors='replace')}" for p, d in zip(program_ids, datas, strict=True)
             if p in (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID)]
    return "; ".join(memos) if memos else None
