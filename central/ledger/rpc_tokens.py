"""The embedded ledger's JSON-RPC methods for accounts and tokens: ``getAccountInfo``, ``getMultipleAccounts``,
``getProgramAccounts`` (``dataSize`` / ``memcmp`` filters, ``dataSlice``, ``withContext``), ``getTokenAccountBalance``,
``getTokenAccountsByOwner`` / ``ByDelegate``, ``getTokenSupply``, ``getTokenLargestAccounts``; ``jsonParsed`` for
SPL Token and Token-2022 (``central.ledger.token_json``)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

from central.ledger.embedded import EmbeddedLedger
from central.ledger.history import largest_token_accounts, program_accounts, token_accounts, token_accounts_by_owner
from central.ledger.port import MAX_ACCOUNTS_PER_QUERY
from central.ledger.rpc_params import (
    Handler,
    account_json,
    config,
    context,
    invalid,
    param,
    pubkey,
    u64,
)
from central.ledger.token_json import parsed_token, token_account_kind
from central.ledger.tokens import TOKEN_PROGRAMS
from central.ledger.transaction_json import b58decode, ui_amount

MAX_FILTERS = 4
MAX_MEMCMP_BYTES = 128


async def get_account_info(ledger: EmbeddedLedger, params: list[Any]) -> object:
    address = pubkey(param(params, 0))
    cfg = config(params, 1)
    return {"context": context(ledger), "value": account_json(ledger, ledger.account(address), cfg)}


async def get_multiple_accounts(ledger: EmbeddedLedger, params: list[Any]) -> object:
    keys = param(params, 0)
    if not isinstance(keys, list) or len(keys) > MAX_ACCOUNTS_PER_QUERY:
        raise invalid(f"Invalid params: expected a list of at most {MAX_ACCOUNTS_PER_QUERY} public keys")
    cfg = config(params, 1)
    addresses = [pubkey(k) for k in keys]
    return {"context": context(ledger), "value": [account_json(ledger, ledger.account(a), cfg) for a in addresses]}


def _memcmp(spec: object) -> Callable[[bytes], bool]:
    if not isinstance(spec, dict):
        raise invalid("Invalid params: memcmp must be {offset, bytes[, encoding]}")
    offset = u64(spec.get("offset"), "memcmp.offset")
    raw = spec.get("bytes")
    encoding = spec.get("encoding") or "base58"  # null = the default, as for any optional field
    if not isinstance(raw, str) or encoding not in ("base58", "base64"):
        raise invalid("Invalid params: memcmp.bytes must be a base58 or base64 string")
    try:
        want = b58decode(raw) if encoding == "base58" else base64.b64decode(raw, validate=True)
    except ValueError:
        raise invalid("Invalid params: memcmp.bytes does not decode") from None
    if len(want) > MAX_MEMCMP_BYTES:
        raise invalid(f"Invalid params: memcmp.bytes longer than {MAX_MEMCMP_BYTES} bytes")
    return lambda data: data[offset:offset + len(want)] == want


def _filters(specs: object) -> Callable[[bytes], bool]:
    if specs is None:
        return lambda _data: True
    if not isinstance(specs, list) or len(specs) > MAX_FILTERS:
        raise invalid(f"Invalid params: filters must be a list of at most {MAX_FILTERS}")
    checks: list[Callable[[bytes], bool]] = []
    for spec in specs:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise invalid("Invalid params: each filter is {\"dataSize\": n} or {\"memcmp\": {...}}")
        if "dataSize" in spec:
            size = u64(spec["dataSize"], "dataSize")
            checks.append(lambda data, size=size: len(data) == size)  # type: ignore[misc]
        elif "memcmp" in spec:
            checks.append(_memcmp(spec["memcmp"]))
        elif "tokenAccountState" in spec:
            checks.append(lambda data: len(data) >= 165 and data[108] != 0)  # an initialised token account
        else:
            raise invalid("Invalid params: unknown filter")
    return lambda data: all(c(data) for c in checks)


def _keyed(ledger: EmbeddedLedger, found: list[tuple[Pubkey, Account]], cfg: dict[str, Any]) -> list[object]:
    return [{"pubkey": str(address), "account": account_json(ledger, acc, cfg)} for address, acc in found]


async def get_program_accounts(ledger: EmbeddedLedger, params: list[Any]) -> object:
    program = pubkey(param(params, 0))
    cfg = config(params, 1)
    keep = _filters(cfg.get("filters"))
    value = _keyed(ledger, program_accounts(ledger, program, keep), cfg)
    return {"context": context(ledger), "value": value} if cfg.get("withContext") else value


async def get_token_account_balance(ledger: EmbeddedLedger, params: list[Any]) -> object:
    bal = ledger.token_balance(pubkey(param(params, 0)))
    if bal is None:
        raise invalid("Invalid param: could not find account")
    return {"context": context(ledger), "value": ui_amount(bal.amount, bal.decimals)}


def _selector(params: list[Any]) -> tuple[Pubkey | None, Pubkey | None]:
    selector = param(params, 1)
    if not isinstance(selector, dict) or len(selector) != 1 or not ({"mint", "programId"} & selector.keys()):
        raise invalid("Invalid params: expected {\"mint\": ...} or {\"programId\": ...}")
    mint = pubkey(selector["mint"]) if "mint" in selector else None
    program = pubkey(selector["programId"]) if "programId" in selector else None
    if program is not None and program not in TOKEN_PROGRAMS:
        raise invalid("Invalid param: unrecognized Token program id")  # as a node (an empty list hid the mistake)
    return mint, program


async def get_token_accounts_by_owner(ledger: EmbeddedLedger, params: list[Any]) -> object:
    owner = pubkey(param(params, 0))
    mint, program = _selector(params)
    found = token_accounts_by_owner(ledger, owner, mint=mint, program=program)
    return {"context": context(ledger), "value": _keyed(ledger, found, config(params, 2))}


async def get_token_accounts_by_delegate(ledger: EmbeddedLedger, params: list[Any]) -> object:
    delegate = pubkey(param(params, 0))
    mint, program = _selector(params)
    m, p = str(mint) if mint else None, str(program) if program else None
    candidates = token_accounts(ledger, lambda mi, _ow, pr: m in (None, mi) and p in (None, pr))
    found = []
    for address, acc in candidates:
        parsed = parsed_token(acc, 0)
        info = parsed["info"] if parsed is not None else {}
        if isinstance(info, dict) and info.get("delegate") == str(delegate):
            found.append((address, acc))
    return {"context": context(ledger), "value": _keyed(ledger, found, config(params, 2))}


def _mint_account(ledger: EmbeddedLedger, params: list[Any]) -> tuple[Pubkey, Account]:
    mint = pubkey(param(params, 0))
    acc = ledger.account(mint)
    if acc is None or token_account_kind(acc) != "mint":
        raise invalid("Invalid param: not a Token mint")
    return mint, acc


async def get_token_supply(ledger: EmbeddedLedger, params: list[Any]) -> object:
    _mint, acc = _mint_account(ledger, params)
    parsed = parsed_token(acc, None)
    if parsed is None:
        raise invalid("Invalid param: not a Token mint")
    info = parsed["info"]
    assert isinstance(info, dict)
    return {"context": context(ledger), "value": ui_amount(int(info["supply"]), int(info["decimals"]))}


async def get_token_largest_accounts(ledger: EmbeddedLedger, params: list[Any]) -> object:
    mint, acc = _mint_account(ledger, params)
    decimals = acc.data[44]
    value = [{"address": str(address), **ui_amount(amount, decimals)}
             for address, amount in largest_token_accounts(ledger, mint)]
    return {"context": context(ledger), "value": value}


METHODS: dict[str, Handler] = {
    "getAccountInfo": get_account_info,
    "getMultipleAccounts": get_multiple_accounts,
    "getProgramAccounts": get_program_accounts,
    "getTokenAccountBalance": get_token_account_balance,
    "getTokenAccountsByOwner": get_token_accounts_by_owner,
    "getTokenAccountsByDelegate": get_token_accounts_by_delegate,
    "getTokenSupply": get_token_supply,
    "getTokenLargestAccounts": get_token_largest_accounts,
}
