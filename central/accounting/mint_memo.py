"""What a mint transaction's SPL Memo says, and the Merkle root it carries.

Each (meter, window) mint is a leaf::

    mint_leaf = SHA-256(b"GTX/mint/v1\\x00" || meter_id (16 bytes, UUID) || window_start_ms (u64 LE)
                        || window_end_ms (u64 LE) || amount_wh (u64 LE) || window_root (32 bytes))

where ``window_root`` is the Merkle root of the signed readings the window was computed from
(``central.accounting.merkle``; stored in ``energy_windows.merkle_root``). The transaction's root is
``merkle_root([mint_leaf, ...])`` over its mints in ``(window_start_ms, meter_id)`` order, with the same tree rules.
So from the memo one can walk down to every signed meter reading behind every minted Wh.

Memo text (ASCII, one line)::

    gtx:mint:v1 w=<window start, unix seconds>[,<start>...] len=<window seconds> n=<mints> root=<64 hex>
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from central.accounting.merkle import leaf_hash, merkle_root, root_of_leaves

MINT_LEAF_DOMAIN = b"GTX/mint/v1\x00"
MEMO_PREFIX = "gtx:mint:v1"


@dataclass(frozen=True, slots=True)
class MintLeaf:
    meter_id: uuid.UUID
    window_start_ms: int
    window_end_ms: int
    amount_wh: int
    window_root: bytes

    def digest(self) -> bytes:
        return hashlib.sha256(
            MINT_LEAF_DOMAIN
            + self.meter_id.bytes
            + self.window_start_ms.to_bytes(8, "little")
            + self.window_end_ms.to_bytes(8, "little")
            + self.amount_wh.to_bytes(8, "little")
            + self.window_root
        ).digest()

    def sort_key(self) -> tuple[int, bytes]:
        return (self.window_start_ms, self.meter_id.bytes)

    def node(self) -> bytes:
        """This mint's leaf node in the transaction's tree (``leaf_hash(digest())``)."""
        return leaf_hash(self.digest())


def mints_root(leaves: Sequence[MintLeaf]) -> bytes:
    ordered = sorted(leaves, key=MintLeaf.sort_key)
    return merkle_root([leaf.digest() for leaf in ordered])


def mint_memo(leaves: Sequence[MintLeaf], nodes: Mapping[MintLeaf, bytes] | None = None) -> str:
    """The memo text; ``nodes`` may supply cached ``MintLeaf.node()`` values (same result, faster)."""
    if not leaves:
        raise ValueError("a mint memo needs at least one mint")
    starts = sorted({leaf.window_start_ms // 1000 for leaf in leaves})
    lengths = {(leaf.window_end_ms - leaf.window_start_ms) // 1000 for leaf in leaves}
    length = lengths.pop() if len(lengths) == 1 else 0
    ordered = sorted(leaves, key=MintLeaf.sort_key)
    root = root_of_leaves([nodes[leaf] if nodes is not None else leaf.node() for leaf in ordered])
    return f"{MEMO_PREFIX} w={','.join(map(str, starts))} len={length} n={len(leaves)} root={root.hex()}"


@dataclass(frozen=True, slots=True)
class ParsedMemo:
    window_starts_s: tuple[int, ...]
    window_seconds: int
    count: int
    root: bytes


def parse_mint_memo(text: str) -> ParsedMemo:
    parts = text.split(" ")
    if len(parts) != 5 or parts[0] != MEMO_PREFIX:
        raise ValueError("not a GridTokenX mint memo")
    fields = dict(p.split("=", 1) for p in parts[1:])
    return ParsedMemo(
        tuple(int(s) for s in fields["w"].split(",")),
        int(fields["len"]),
        int(fields["n"]),
        bytes.fromhex(fields["root"]),
    )
