"""Proof of a mint: from the on-chain memo root down to the signed meter readings behind one (meter, window).

Given a confirmed mint, :func:`mint_proof` returns everything needed to check it independently:

1. the window's signed records (their hashes, in accounting order, and the records themselves, rebuilt from hot
   storage or read from the archive for archived ranges) and their Merkle root (``central.accounting.merkle``) — the
   ``window_root``;
2. the mint leaf ``SHA-256("GTX/mint/v1\\0" || meter || start || end || Wh || window_root)`` and its audit path to
   the root of all mints in the same transaction;
3. the transaction signature, whose SPL Memo carries that root (``central.accounting.mint_memo``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from central.accounting.merkle import merkle_proof, merkle_root, verify_proof
from central.accounting.mint_intent import MINT_KIND, parse_intent_key
from central.accounting.mint_memo import MintLeaf, mints_root
from central.archive.pg import ArchiveReader, meter_rows


@dataclass(frozen=True, slots=True)
class MintProof:
    key: str
    meter_id: uuid.UUID
    owner_id: uuid.UUID
    window_start_ms: int
    window_end_ms: int
    energy_wh: int
    record_hashes: tuple[bytes, ...]
    window_root: bytes
    leaf: bytes
    #: (sibling_is_left, sibling) from the leaf up to ``tx_root``
    path: tuple[tuple[bool, bytes], ...]
    tx_root: bytes
    signature: str | None
    status: str
    #: the signed records behind ``record_hashes`` (same order); a record not found (e.g. older than the search
    #: margin) is missing from this list, so ``check`` fails rather than passing on hashes alone
    records: tuple[bytes, ...] = ()

    def check(self) -> bool:
        """The proof is internally consistent: every record is there and hashes to its leaf, the leaves give the
        window root, the mint leaf reaches ``tx_root`` (the memo's root must still be compared with the chain, and
        each record's signature checked against its device key)."""
        return (
            [hashlib.sha256(r).digest() for r in self.records] == list(self.record_hashes)
            and merkle_root(list(self.record_hashes)) == self.window_root
            and verify_proof(self.leaf, self.path, self.tx_root)
        )


#: How far around its window a mint's records are looked for (the reading before a window's start and the first
#: at or after its end are among them; a meter silent for longer than this leaves them out of ``records``).
RECORD_MARGIN_MS = 86_400_000


async def window_records(
    conn: Any, meter_id: uuid.UUID, start_ms: int, end_ms: int, hashes: list[bytes], archive: ArchiveReader | None
) -> tuple[bytes, ...]:
    """The signed records with these hashes among the meter's readings around the window (hot and archived)."""
    rows = await meter_rows(conn, meter_id, start_ms - RECORD_MARGIN_MS, end_ms + RECORD_MARGIN_MS, archive=archive)
    by_hash = {}
    for r in rows:
        raw = r.raw()
        by_hash[hashlib.sha256(raw).digest()] = raw
    return tuple(by_hash[h] for h in hashes if h in by_hash)


async def mint_proof(conn: Any, key: str, archive: ArchiveReader | None = None) -> MintProof | None:
    parsed = parse_intent_key(key)
    if parsed is None:
        return None
    meter_id, start_ms = parsed
    row = await conn.fetchrow(
        "SELECT e.*, c.signature, c.state, c.submission_id FROM energy_windows e "
        "JOIN chain_intent c ON c.kind = $1 AND c.key = $2 WHERE e.meter_id = $3 AND e.window_start_ms = $4",
        MINT_KIND,
        key,
        meter_id,
        start_ms,
    )
    if row is None:
        return None
    this = MintLeaf(meter_id, start_ms, row["window_end_ms"], row["export_wh"], bytes(row["merkle_root"]))
    leaves = [this]
    if row["submission_id"] is not None:
        rows = await conn.fetch(
            "SELECT payload FROM chain_intent WHERE submission_id = $1 AND key <> $2", row["submission_id"], key
        )
        for r in rows:
            p = json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
            leaves.append(
                MintLeaf(uuid.UUID(p["meter"]), int(p["start"]), int(p["end"]), int(p["wh"]), bytes.fromhex(p["root"]))
            )
    ordered = sorted(leaves, key=MintLeaf.sort_key)
    hashes = [bytes(h) for h in row["record_hashes"]]
    records = await window_records(conn, meter_id, start_ms, row["window_end_ms"], hashes, archive)
    digests = [leaf.digest() for leaf in ordered]
    index = ordered.index(this)
    return MintProof(
        key=key,
        meter_id=meter_id,
        owner_id=row["owner_id"],
        window_start_ms=start_ms,
        window_end_ms=row["window_end_ms"],
        energy_wh=row["export_wh"],
        record_hashes=tuple(hashes),
        window_root=bytes(row["merkle_root"]),
        leaf=digests[index],
        path=tuple(merkle_proof(digests, index)),
        tx_root=mints_root(ordered),
        signature=row["signature"],
        status=row["state"],
        records=records,
    )
