"""The embedded ledger's JSON-RPC methods for signatures, transactions and blocks: ``getTransaction`` (``json``,
``jsonParsed``, ``base64``, ``base58``), ``getSignaturesForAddress``, ``getBlock`` (``transactionDetails`` full /
signatures / accounts / none), ``getBlocks``, ``getBlocksWithLimit``, ``getBlockTime``, ``getFirstAvailableBlock``,
``getTransactionCount``, ``getRecentPrioritizationFees``, ``getEpochSchedule``. Blocks are described in
``central.ledger.history``."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from solders.message import MessageV0
from solders.pubkey import Pubkey

from central.ledger.embedded import EmbeddedLedger
from central.ledger.history import Block, all_keys
from central.ledger.instruction_json import memo_of, parsed_instruction
from central.ledger.port import TransactionRecord
from central.ledger.rpc_params import (
    Handler,
    RpcError,
    config,
    history_of,
    invalid,
    param,
    pubkey,
    signature,
    u64,
)
from central.ledger.transaction_json import encode_transaction

COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
MAX_SIGNATURES_PER_ADDRESS = 1000
MAX_BLOCK_RANGE = 500_000
SLOTS_PER_EPOCH = 432_000
TX_ENCODINGS = ("json", "jsonParsed", "base64", "base58")


def _writable(record: TransactionRecord, n_static: int, i: int) -> bool:
    header = record.transaction.message.header
    signed = header.num_required_signatures
    if i < signed:
        return i < signed - header.num_readonly_signed_accounts
    return i < n_static - header.num_readonly_unsigned_accounts


def _parsed_transaction(record: TransactionRecord, meta: dict[str, Any]) -> dict[str, object]:
    """The ``transaction`` field under ``jsonParsed``: account keys with their roles, instructions parsed."""
    msg = record.transaction.message
    static = list(msg.account_keys)
    keys = all_keys(record, meta)
    loaded = meta.get("loaded") or {}
    n_loaded_w = len(loaded.get("writable", [])) if isinstance(loaded, dict) else 0
    signed = msg.header.num_required_signatures
    account_keys: list[dict[str, object]] = []
    for i, k in enumerate(keys):
        if i < len(static):
            account_keys.append({"pubkey": str(k), "writable": _writable(record, len(static), i),
                                 "signer": i < signed, "source": "transaction"})
        else:
            account_keys.append({"pubkey": str(k), "writable": i - len(static) < n_loaded_w, "signer": False,
                                 "source": "lookupTable"})
    names = [str(k) for k in keys]
    instructions = [parsed_instruction(keys[ix.program_id_index], [names[a] for a in bytes(ix.accounts)],
                                       bytes(ix.data)) for ix in msg.instructions]
    message: dict[str, object] = {"accountKeys": account_keys, "recentBlockhash": str(msg.recent_blockhash),
                                  "instructions": instructions}
    if isinstance(msg, MessageV0):
        message["addressTableLookups"] = [
            {"accountKey": str(lk.account_key), "writableIndexes": list(bytes(lk.writable_indexes)),
             "readonlyIndexes": list(bytes(lk.readonly_indexes))} for lk in msg.address_table_lookups]
    return {"signatures": [str(s) for s in record.transaction.signatures], "message": message}


def transaction_json(ledger: EmbeddedLedger, record: TransactionRecord, meta: dict[str, Any], encoding: str,
                     *, with_slot: bool = True) -> dict[str, object]:
    out = encode_transaction(record, meta, "json" if encoding == "jsonParsed" else encoding, ledger.mint_decimals)
    if encoding == "jsonParsed":
        out["transaction"] = _parsed_transaction(record, meta)
        tx_meta = out["meta"]
        assert isinstance(tx_meta, dict)
        tx_meta.pop("loadedAddresses", None)  # a node folds them into accountKeys under jsonParsed
    if not with_slot:
        out.pop("slot", None)
        out.pop("blockTime", None)
    return out


def _tx_config(params: list[Any]) -> dict[str, Any]:
    cfg = config(params, 1) if isinstance(param(params, 1), dict) else {"encoding": param(params, 1, "json")}
    if cfg.get("encoding", "json") not in TX_ENCODINGS:
        raise invalid(f"Invalid params: unsupported encoding {str(cfg.get('encoding'))[:32]!r}")
    return cfg


def _check_version(record: TransactionRecord, cfg: dict[str, Any]) -> None:
    if isinstance(record.transaction.version(), int) and cfg.get("maxSupportedTransactionVersion") is None:
        raise RpcError(-32015, "Transaction version (0) is not supported by the requesting client. "
                               "Please try the request again with the following configuration parameter: "
                               "\"maxSupportedTransactionVersion\": 0")


async def get_transaction(ledger: EmbeddedLedger, params: list[Any]) -> object:
    sig = signature(param(params, 0))
    cfg = _tx_config(params)
    found = ledger.transaction(sig)
    if found is None:
        return None
    record, meta = found
    _check_version(record, cfg)
    return transaction_json(ledger, record, meta, cfg.get("encoding", "json"))


def _memo(record: TransactionRecord) -> str | None:
    msg = record.transaction.message
    keys = list(msg.account_keys)
    ixs = [ix for ix in msg.instructions if ix.program_id_index < len(keys)]
    return memo_of([keys[ix.program_id_index] for ix in ixs], [bytes(ix.data) for ix in ixs])


async def get_signatures_for_address(ledger: EmbeddedLedger, params: list[Any]) -> object:
    address = pubkey(param(params, 0))
    cfg = config(params, 1)
    limit = u64(cfg.get("limit", MAX_SIGNATURES_PER_ADDRESS), "limit", minimum=1, maximum=MAX_SIGNATURES_PER_ADDRESS)
    before = signature(cfg["before"]) if cfg.get("before") is not None else None
    until = signature(cfg["until"]) if cfg.get("until") is not None else None
    out: list[object] = []
    await history_of(ledger).catch_up()
    for sig in history_of(ledger).signatures_for_address(address, limit=limit, before=before, until=until):
        found = ledger.transaction(sig)
        status = ledger.status(sig)
        if found is None or status is None:
            continue
        record, _meta = found
        out.append({"signature": str(sig), "slot": record.slot, "err": record.err, "memo": _memo(record),
                    "blockTime": record.block_time, "confirmationStatus": status.confirmation_status})
    return out


def _block_transactions(ledger: EmbeddedLedger, block: Block) -> Iterator[tuple[TransactionRecord, dict[str, object]]]:
    """The block's transactions (record and stored meta), in block order; any the ledger no longer holds left out."""
    for sig in block.signatures:
        found = ledger.transaction(sig)
        if found is not None:
            yield found


def _block_json(ledger: EmbeddedLedger, block: Block, cfg: dict[str, Any]) -> dict[str, object]:
    encoding = cfg.get("encoding", "json")
    if encoding not in TX_ENCODINGS:
        raise invalid(f"Invalid params: unsupported encoding {str(encoding)[:32]!r}")
    details = cfg.get("transactionDetails", "full")
    if details not in ("full", "signatures", "accounts", "none"):
        raise invalid("Invalid params: transactionDetails must be full, signatures, accounts or none")
    out: dict[str, object] = {"blockhash": str(block.blockhash), "previousBlockhash": str(block.previous_blockhash),
                              "parentSlot": block.parent_slot, "blockTime": block.block_time,
                              "blockHeight": block.slot}
    if cfg.get("rewards", True):
        out["rewards"] = []
    if details == "signatures":
        out["signatures"] = [str(s) for s in block.signatures]
    elif details != "none":
        txs: list[object] = []
        for record, meta in _block_transactions(ledger, block):
            _check_version(record, cfg)
            if details == "full":
                txs.append(transaction_json(ledger, record, meta, encoding, with_slot=False))
            else:
                full = transaction_json(ledger, record, meta, "jsonParsed", with_slot=False)
                parsed = full["transaction"]
                assert isinstance(parsed, dict)
                message = parsed["message"]
                assert isinstance(message, dict)
                txs.append({"transaction": {"signatures": parsed["signatures"],
                                            "accountKeys": message["accountKeys"]},
                            "meta": full["meta"], "version": full["version"]})
        out["transactions"] = txs
    return out


def _slot_param(params: list[Any], i: int, what: str) -> int:
    return u64(param(params, i), what)


async def _block(ledger: EmbeddedLedger, slot: int) -> Block | None:
    """The block at ``slot`` once the history has caught up with the ledger (``None``: no block there)."""
    await history_of(ledger).catch_up()
    return history_of(ledger).block(slot)


async def get_block(ledger: EmbeddedLedger, params: list[Any]) -> object:
    slot = _slot_param(params, 0, "slot")
    cfg = config(params, 1) if isinstance(param(params, 1), dict) else {"encoding": param(params, 1, "json")}
    if slot > ledger.slot:
        raise RpcError(-32004, f"Block not available for slot {slot}")
    block = await _block(ledger, slot)
    if block is None:
        raise RpcError(-32007, f"Slot {slot} was skipped, or missing due to ledger jump to recent snapshot")
    return _block_json(ledger, block, cfg)


async def get_block_time(ledger: EmbeddedLedger, params: list[Any]) -> object:
    slot = _slot_param(params, 0, "slot")
    block = await _block(ledger, slot)
    if block is None:
        raise RpcError(-32004, f"Block not available for slot {slot}")
    return block.block_time


async def get_blocks(ledger: EmbeddedLedger, params: list[Any]) -> object:
    start = _slot_param(params, 0, "start slot")
    end_param = param(params, 1)
    end = u64(end_param, "end slot") if isinstance(end_param, int) else ledger.slot
    if end - start > MAX_BLOCK_RANGE:
        raise invalid(f"Invalid params: slot range too large; max {MAX_BLOCK_RANGE}")
    return history_of(ledger).block_slots(start, end)


async def get_blocks_with_limit(ledger: EmbeddedLedger, params: list[Any]) -> object:
    start = _slot_param(params, 0, "start slot")
    limit = u64(param(params, 1), "limit", maximum=MAX_BLOCK_RANGE)
    return history_of(ledger).block_slots(start, None, limit)


async def get_first_available_block(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return history_of(ledger).first_block()


async def get_transaction_count(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return ledger.transaction_count


async def get_epoch_schedule(_ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return {"firstNormalEpoch": 0, "firstNormalSlot": 0, "leaderScheduleSlotOffset": SLOTS_PER_EPOCH,
            "slotsPerEpoch": SLOTS_PER_EPOCH, "warmup": False}


def _compute_unit_price(record: TransactionRecord) -> int:
    msg = record.transaction.message
    keys = list(msg.account_keys)
    for ix in msg.instructions:
        data = bytes(ix.data)
        if ix.program_id_index < len(keys) and keys[ix.program_id_index] == COMPUTE_BUDGET_PROGRAM_ID \
                and len(data) == 9 and data[0] == 3:
            return int(struct.unpack_from("<Q", data, 1)[0])
    return 0


async def get_recent_prioritization_fees(ledger: EmbeddedLedger, params: list[Any]) -> object:
    """Per recent block with transactions: the lowest compute-unit price paid in it by a transaction that locks
    every listed account for writing (all of its transactions when none is listed), in micro-lamports."""
    wanted = param(params, 0, [])
    if not isinstance(wanted, list) or len(wanted) > 128:
        raise invalid("Invalid params: expected a list of at most 128 public keys")
    accounts = {pubkey(a) for a in wanted}
    history = history_of(ledger)
    await history.catch_up()
    out: list[object] = []
    for slot, _h in ledger.recent_blocks():
        block = history.block(slot)
        if block is None or not block.signatures:
            continue
        prices: list[int] = []
        for record, meta in _block_transactions(ledger, block):
            keys = all_keys(record, meta)
            if accounts and not accounts <= set(keys):
                continue
            prices.append(_compute_unit_price(record))
        if prices:
            out.append({"slot": slot, "prioritizationFee": min(prices)})
    return out


METHODS: dict[str, Handler] = {
    "getTransaction": get_transaction,
    "getSignaturesForAddress": get_signatures_for_address,
    "getBlock": get_block,
    "getBlockTime": get_block_time,
    "getBlocks": get_blocks,
    "getBlocksWithLimit": get_blocks_with_limit,
    "getFirstAvailableBlock": get_first_available_block,
    "getTransactionCount": get_transaction_count,
    "getRecentPrioritizationFees": get_recent_prioritization_fees,
    "getEpochSchedule": get_epoch_schedule,
}

