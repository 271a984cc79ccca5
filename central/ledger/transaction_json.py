"""JSON shapes of ``getTransaction`` and token amounts, as a Solana node produces them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from solders.message import MessageV0
from solders.pubkey import Pubkey

from central.ledger.port import TransactionRecord

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        i = _ALPHABET.find(ch)
        if i < 0:
            raise ValueError("invalid base58 character")
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return bytes(len(text) - len(text.lstrip("1"))) + body


def ui_amount(amount: int, decimals: int) -> dict[str, object]:
    """``UiTokenAmount``: ``uiAmount`` is the node's float display field; ``amount`` is the exact integer."""
    whole, frac = divmod(amount, 10**decimals)
    text = str(whole)
    if decimals and frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return {"amount": str(amount), "decimals": decimals, "uiAmount": float(text), "uiAmountString": text}


def _token_balances(entries: list[list[Any]], decimals: Callable[[Pubkey], int]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for index, mint, owner, program, amount in entries:
        out.append({"accountIndex": index, "mint": mint, "owner": owner, "programId": program,
                    "uiTokenAmount": ui_amount(int(amount), decimals(Pubkey.from_string(mint)))})
    return out


def _message_json(record: TransactionRecord) -> dict[str, object]:
    msg = record.transaction.message
    header = msg.header
    out: dict[str, object] = {
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "accountKeys": [str(k) for k in msg.account_keys],
        "recentBlockhash": str(msg.recent_blockhash),
        "instructions": [
            {"programIdIndex": ix.program_id_index, "accounts": list(bytes(ix.accounts)),
             "data": b58encode(bytes(ix.data)), "stackHeight": None}
            for ix in msg.instructions
        ],
    }
    if isinstance(msg, MessageV0):
        out["addressTableLookups"] = [
            {"accountKey": str(lk.account_key), "writableIndexes": list(bytes(lk.writable_indexes)),
             "readonlyIndexes": list(bytes(lk.readonly_indexes))}
            for lk in msg.address_table_lookups
        ]
    return out


def encode_transaction(record: TransactionRecord, meta: dict[str, Any], encoding: str,
                       decimals: Callable[[Pubkey], int]) -> dict[str, object]:
    tx = record.transaction
    raw = bytes(tx)
    if encoding == "base64":
        import base64  # noqa: PLC0415

        transaction: object = [base64.b64encode(raw).decode(), "base64"]
    elif encoding == "base58":
        transaction = [b58encode(raw), "base58"]
    else:
        transaction = {"signatures": [str(s) for s in tx.signatures], "message": _message_json(record)}
    version = tx.version()
    is_v0 = isinstance(version, int)
    meta_json: dict[str, object] = {
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "fee": record.fee,
        "preBalances": meta["pre"],
        "postBalances": meta["post"],
        "innerInstructions": [],
        "logMessages": list(record.logs),
        "preTokenBalances": _token_balances(meta["preTok"], decimals),
        "postTokenBalances": _token_balances(meta["postTok"], decimals),
        "rewards": [],
        "computeUnitsConsumed": meta["cu"],
    }
    if is_v0:
        meta_json["loadedAddresses"] = meta["loaded"]
    return {"slot": record.slot, "transaction": transaction, "meta": meta_json, "blockTime": record.block_time,
            "version": version if is_v0 else "legacy"}
