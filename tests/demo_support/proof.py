"""An auditor's check of one mint, written from the documented formats only (no central code): the gateway-signed
readings → their Merkle root → the mint leaf → the root in the mint transaction's memo, read from the ledger."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from demo_support.api import Api, JsonRpc
from demo_support.people import Owner
from demo_support.report import kwh, say

from protocol.base58 import b58decode
from protocol.record import decode_reading
from tests.memo_logs import memo_texts

MINT_LEAF_DOMAIN = b"GTX/mint/v1\x00"


def _leaf(h: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + h).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(hashes: list[bytes]) -> bytes:
    """Leaves 0x00‖h, nodes 0x01‖l‖r, an odd node carried up unchanged (central/accounting/merkle.py docs)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = [_leaf(h) for h in hashes]
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _memo_texts(tx: Any) -> list[str]:
    """Memo-looking strings in a getTransaction result: log lines, and base58 instruction data decoded."""
    texts = memo_texts((tx.get("meta") or {}).get("logMessages") or [])
    for ix in (((tx.get("transaction") or {}).get("message") or {}).get("instructions") or []):
        data = ix.get("data")
        if isinstance(data, str):
            try:
                texts.append(b58decode(data).decode("utf-8", errors="replace"))
            except ValueError:
                continue
    return texts


async def audit_mint(api: Api, rpc: JsonRpc, o: Owner, mint: dict[str, Any]) -> bool:
    p = await api.get(f"/api/v1/mints/{mint['key']}/proof", o)
    start, end = int(p["window_start_ms"]), int(p["window_end_ms"])
    page = await api.get(f"/api/v1/meters/{o.meter_id}/readings", o, from_ms=start - 120_000, to_ms=end + 120_000,
                         limit=1000)
    signed = {}
    for r in page["readings"]:
        raw = bytes.fromhex(r["record"])
        decode_reading(raw)  # the gateway's signature, checked here
        signed[hashlib.sha256(raw).digest()] = raw
    hashes = [bytes.fromhex(h) for h in p["record_hashes"]]
    all_signed = bool(hashes) and all(h in signed for h in hashes)
    window_root = merkle_root(hashes)
    wh = int(p["energy_wh"])
    leaf = hashlib.sha256(MINT_LEAF_DOMAIN + uuid.UUID(str(p["meter_id"])).bytes + start.to_bytes(8, "little")
                          + end.to_bytes(8, "little") + wh.to_bytes(8, "little") + window_root).digest()
    node = _leaf(leaf)
    for step in p["path"]:
        sibling = bytes.fromhex(step["sibling"])
        node = _node(sibling, node) if step["sibling_is_left"] else _node(node, sibling)
    tx = await rpc.call("getTransaction", p["signature"], {"encoding": "json", "maxSupportedTransactionVersion": 0})
    memos = [t for t in _memo_texts(tx or {}) if "gtx:mint:v1" in t]
    on_chain = any(f"root={p['tx_root']}" in t for t in memos)
    ok = all_signed and window_root.hex() == p["window_root"] and leaf.hex() == p["mint_leaf"] \
        and node.hex() == p["tx_root"] and on_chain
    say(f"audit of {o.label}'s mint {mint['window_start'][11:19]}–{mint['window_end'][11:19]} ({kwh(p['energy_wh'])}): "
        f"{len(hashes)} gateway-signed readings (signatures checked) → window root "
        f"{'ok' if window_root.hex() == p['window_root'] else 'MISMATCH'} → mint leaf "
        f"{'ok' if leaf.hex() == p['mint_leaf'] else 'MISMATCH'} → memo root "
        f"{'ok' if node.hex() == p['tx_root'] else 'MISMATCH'}, found on chain: {on_chain}")
    if memos:
        memo = memos[0][memos[0].index("gtx:mint:v1"):].rstrip('"')
        say(f"  memo of tx {str(p['signature'])[:16]}…: {memo[:memo.find('root=') + 21]}…")
    return ok
