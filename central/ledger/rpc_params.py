"""Parameters and answers shared by the embedded ledger's JSON-RPC methods (``central.ledger.jsonrpc`` and the
method groups ``rpc_history`` and ``rpc_tokens``): parameter validation, the ``RpcError`` they raise, the context
object, commitment/``minContextSlot`` checks, and account encodings (``base64``, ``base58``, ``base64+zstd`` is
refused, ``jsonParsed`` with the base64 fallback a node uses, ``dataSlice``)."""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger.embedded import EmbeddedLedger
from central.ledger.history import History
from central.ledger.token_json import mint_of, parsed_account
from central.ledger.transaction_json import b58encode

API_VERSION = "2.2.0"
SOLANA_CORE_VERSION = "2.2.0"
FEATURE_SET = 3294202862
U64_MAX = 2**64 - 1
#: Every commitment a node accepts (the legacy names included); the embedded ledger answers them all alike.
COMMITMENTS = frozenset({"processed", "confirmed", "finalized", "recent", "single", "singleGossip", "root", "max"})

Handler = Callable[[EmbeddedLedger, list[Any]], Awaitable[object]]


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error_answer(code: int, message: str, rid: object = None, data: object = None) -> dict[str, object]:
    """A JSON-RPC 2.0 error answer (HTTP endpoint and PubSub websocket alike)."""
    err: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "id": rid}


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def load_json(raw: bytes | str) -> object:
    """A request body as JSON (NaN and Infinity are not JSON); ValueError, UnicodeDecodeError or RecursionError
    (absurdly nested) when it is not: answer ``error_answer(-32700, "Parse error")``."""
    return json.loads(raw, parse_constant=_reject_constant)


def envelope(req: object) -> tuple[object, str, object] | None:
    """(id, method, params) of a well-formed JSON-RPC 2.0 request (a string, integer or null id), else None: answer
    ``error_answer(-32600, "Invalid request")``."""
    if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
        return None
    rid = req.get("id")
    if not (rid is None or isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))):
        return None
    return rid, req["method"], req.get("params", [])


def invalid(msg: str) -> RpcError:
    return RpcError(-32602, msg)


def param(params: list[Any], i: int, default: object = None) -> Any:
    return params[i] if len(params) > i and params[i] is not None else default


def u64(value: object, what: str, *, minimum: int = 0, maximum: int = U64_MAX) -> int:
    """A JSON integer (not a boolean) in ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise invalid(f"Invalid params: {what} must be an integer in {minimum}..{maximum}")
    return value


def pubkey(value: object) -> Pubkey:
    if not isinstance(value, str):
        raise invalid("Invalid param: expected a base-58 public key string")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise invalid("Invalid param: Invalid") from None


def signature(value: object) -> Signature:
    try:
        return Signature.from_string(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise invalid("Invalid param: Invalid signature") from None


def config(params: list[Any], i: int) -> dict[str, Any]:
    """The configuration object at ``params[i]``; a field given as ``null`` is absent (a node's optional fields:
    solana-py sends ``"encoding": null`` and ``"limit": null`` for the arguments left at their defaults)."""
    cfg = param(params, i, {})
    if not isinstance(cfg, dict):
        raise invalid("Invalid params: configuration must be an object")
    return {k: v for k, v in cfg.items() if v is not None}


def check_config(ledger: EmbeddedLedger, params: list[Any]) -> None:
    """``commitment`` and ``minContextSlot`` of any configuration object in ``params``: every commitment is accepted
    (the embedded ledger has one fork); a ``minContextSlot`` beyond the current slot is error -32016, as on a node."""
    for cfg in params:
        if not isinstance(cfg, dict):
            continue
        commitment = cfg.get("commitment")
        if commitment is not None and (not isinstance(commitment, str) or commitment not in COMMITMENTS):
            raise invalid(f"Invalid params: unknown commitment {str(commitment)[:32]!r}")
        min_slot = cfg.get("minContextSlot")
        if min_slot is not None:
            wanted = u64(min_slot, "minContextSlot")
            slot = ledger.slot
            if wanted > slot:
                raise RpcError(-32016, "Minimum context slot has not been reached", {"contextSlot": slot})


def context(ledger: EmbeddedLedger) -> dict[str, object]:
    return {"slot": ledger.slot, "apiVersion": API_VERSION}


def account_encoding(cfg: dict[str, Any]) -> str:
    enc = cfg.get("encoding", "base64")
    if enc in ("base64", "base58", "jsonParsed"):
        return str(enc)
    raise invalid(f"Invalid params: unsupported encoding {str(enc)[:32]!r} (base64, base58, jsonParsed)")


def _data_slice(cfg: dict[str, Any]) -> tuple[int, int] | None:
    ds = cfg.get("dataSlice")
    if ds is None:
        return None
    if not isinstance(ds, dict):
        raise invalid("Invalid params: dataSlice must be {offset, length}")
    return u64(ds.get("offset"), "dataSlice.offset"), u64(ds.get("length"), "dataSlice.length")


def account_json(ledger: EmbeddedLedger, acc: Account | None, cfg: dict[str, Any]) -> dict[str, object] | None:
    """An account as a node encodes it under ``cfg`` (``encoding``, ``dataSlice``)."""
    if acc is None:
        return None
    encoding = account_encoding(cfg)
    data_field: object = None
    if encoding == "jsonParsed":
        mint = mint_of(acc)
        data_field = parsed_account(acc, ledger.mint_decimals(mint) if mint is not None else None)
        encoding = "base64"  # a node's fallback when it has no parser for the account
    if data_field is None:
        raw = acc.data
        sl = _data_slice(cfg)
        if sl is not None:
            raw = raw[sl[0]:sl[0] + sl[1]]
        data_field = ([b58encode(raw), "base58"] if encoding == "base58"
                      else [base64.b64encode(raw).decode(), "base64"])
    return {"data": data_field, "executable": acc.executable, "lamports": acc.lamports, "owner": str(acc.owner),
            "rentEpoch": acc.rent_epoch, "space": len(acc.data)}


_HISTORIES: weakref.WeakKeyDictionary[EmbeddedLedger, History] = weakref.WeakKeyDictionary()


def history_of(ledger: EmbeddedLedger) -> History:
    """The one history index of ``ledger`` (built lazily, shared by every endpoint serving it)."""
    found = _HISTORIES.get(ledger)
    if found is None:
        found = _HISTORIES[ledger] = History(ledger)
    return found
