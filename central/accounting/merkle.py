"""Merkle root over the signed record hashes a accounting window was computed from.

The tree (normative; the mint memo carries its root, anyone holding the records can recompute it):

- Leaves are the 32-byte record hashes (protocol: SHA-256 of the complete signed record), in the order the accounting
  core uses them: by (timestamp_ms, seq, record hash). ``leaf = SHA-256(0x00 || record_hash)``.
- An inner node is ``SHA-256(0x01 || left || right)``. The distinct one-byte prefixes separate leaves from nodes, so
  no record hash can be passed off as an inner node (second-preimage defence).
- Levels are built pairwise from the left. A level with an odd number of nodes promotes its last node unchanged to
  the next level (it is NOT paired with a copy of itself, so two different leaf lists never share a root the way
  Bitcoin's duplicate-last rule allows).
- The root of a single leaf is that leaf's hash; the root of no leaves is ``SHA-256(b"")`` (never used for a window,
  which always has at least one record, but defined so the function is total).

A root over several windows (as in one mint transaction) is the same construction with the windows' roots as the
"record hashes".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(record_hash: bytes) -> bytes:
    if len(record_hash) != 32:
        raise ValueError(f"a record hash is 32 bytes, got {len(record_hash)}")
    return hashlib.sha256(LEAF_PREFIX + record_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def merkle_root(record_hashes: Sequence[bytes]) -> bytes:
    """Root of the tree described in the module docstring."""
    if not record_hashes:
        return EMPTY_ROOT
    return root_of_leaves([leaf_hash(h) for h in record_hashes])


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """Root over already computed leaf hashes (``leaf_hash`` of each record hash), for callers that cache them."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_proof(record_hashes: Sequence[bytes], index: int) -> list[tuple[bool, bytes]]:
    """Audit path for leaf ``index``: a list of (sibling_is_left, sibling) from the leaf level up."""
    if not 0 <= index < len(record_hashes):
        raise IndexError(index)
    level = [leaf_hash(h) for h in record_hashes]
    proof: list[tuple[bool, bytes]] = []
    pos = index
    while len(level) > 1:
        sibling = pos ^ 1
        if sibling < len(level):
            proof.append((sibling < pos, level[sibling]))
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        pos //= 2
    return proof


def verify_proof(record_hash: bytes, proof: Sequence[tuple[bool, bytes]], root: bytes) -> bool:
    node = leaf_hash(record_hash)
    for sibling_is_left, sibling in proof:
        node = node_hash(sibling, node) if sibling_is_left else node_hash(node, sibling)
    return node == root
