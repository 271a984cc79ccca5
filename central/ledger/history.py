"""What explorers and wallets ask of the embedded ledger's history: signatures per address, blocks, token accounts
by owner, delegate or mint, program accounts. ``History`` indexes the ledger's landed transactions lazily (on the
first question that needs it, then incrementally), reading each transaction once from the ledger's log, so opening a
large ledger costs nothing extra.

Blocks: the embedded ledger produces a slot lazily (a slot nobody asked about is never produced, like a skipped slot
on a cluster). Its blocks are the slots that hold transactions, plus the recent slots whose blockhash is still
valid; the parent of a block is the previous one of those.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from dataclasses import dataclass

from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger.embedded import EmbeddedLedger
from central.ledger.port import TransactionRecord


@dataclass(frozen=True)
class Block:
    slot: int
    blockhash: Hash
    block_time: int | None
    parent_slot: int
    previous_blockhash: Hash
    signatures: tuple[Signature, ...]


def all_keys(record: TransactionRecord, meta: dict[str, object]) -> list[Pubkey]:
    """Static account keys, then the lookup-table loaded writable and readonly ones."""
    loaded = meta.get("loaded")
    keys = list(record.transaction.message.account_keys)
    if isinstance(loaded, dict):
        keys += [Pubkey.from_string(k) for k in [*loaded.get("writable", []), *loaded.get("readonly", [])]]
    return keys


class History:
    """Indexes of one ``EmbeddedLedger``'s transactions (by address, by block)."""

    def __init__(self, ledger: EmbeddedLedger) -> None:
        self._ledger = ledger
        self._indexed = 0
        self._by_address: dict[Pubkey, list[Signature]] = {}
        self._by_slot: dict[int, list[Signature]] = {}
        self._slots: list[int] = []

    async def catch_up(self, chunk: int = 2000) -> None:
        """Index what landed since the last question, ``chunk`` transactions at a time with the event loop free in
        between (the first question on a large ledger reads its whole history from the log)."""
        while self._indexed < len(self._ledger.order):
            self._catch_up(chunk)
            await asyncio.sleep(0)

    def _catch_up(self, limit: int | None = None) -> None:
        order = self._ledger.order
        end = len(order) if limit is None else min(len(order), self._indexed + limit)
        while self._indexed < end:
            sig = order[self._indexed]
            found = self._ledger.transaction(sig)
            self._indexed += 1
            if found is None:
                continue
            record, meta = found
            for key in dict.fromkeys(all_keys(record, meta)):
                self._by_address.setdefault(key, []).append(sig)
            self._by_slot.setdefault(record.slot, []).append(sig)

    def signatures_for_address(self, address: Pubkey, *, limit: int, before: Signature | None = None,
                               until: Signature | None = None) -> list[Signature]:
        """Newest first, starting after ``before`` and stopping at ``until`` (neither included)."""
        self._catch_up()
        sigs = self._by_address.get(address, [])
        end = len(sigs)
        if before is not None:
            end = sigs.index(before) if before in sigs else 0
        out: list[Signature] = []
        for i in range(end - 1, -1, -1):
            if sigs[i] == until or len(out) >= limit:
                break
            out.append(sigs[i])
        return out

    def _block_slots(self) -> list[int]:
        known = self._ledger.blocks
        if len(self._slots) != len(known):
            self._slots = sorted(known)
        recent = [s for s, _h in self._ledger.recent_blocks()]
        if not recent:
            return self._slots
        return sorted(set(self._slots) | set(recent))

    def _hash_of(self, slot: int) -> tuple[Hash, int | None] | None:
        known = self._ledger.blocks.get(slot)
        if known is not None:
            return known
        for s, h in self._ledger.recent_blocks():
            if s == slot:
                return h, None
        return None

    def block_slots(self, start: int, end: int | None = None, limit: int | None = None) -> list[int]:
        """Blocks from ``start`` to ``end`` (inclusive), at most ``limit``."""
        slots = self._block_slots()
        lo = bisect.bisect_left(slots, start)
        hi = len(slots) if end is None else bisect.bisect_right(slots, end)
        picked = slots[lo:hi]
        return picked[:limit] if limit is not None else picked

    def first_block(self) -> int:
        slots = self._block_slots()
        return slots[0] if slots else 0

    def block(self, slot: int) -> Block | None:
        self._catch_up()
        found = self._hash_of(slot)
        if found is None:
            return None
        blockhash, block_time = found
        slots = self._block_slots()
        i = bisect.bisect_left(slots, slot)
        parent_slot = slots[i - 1] if i > 0 else slot
        parent = self._hash_of(parent_slot) if i > 0 else None
        if block_time is None:  # a recent empty block: the time of the latest block with transactions before it
            block_time = next((self._ledger.blocks[s][1] for s in reversed(slots[:i]) if s in self._ledger.blocks),
                              None)
        return Block(slot, blockhash, block_time, parent_slot, parent[0] if parent else blockhash,
                     tuple(self._by_slot.get(slot, ())))


def token_accounts(ledger: EmbeddedLedger, keep: Callable[[str, str, str], bool]) -> list[tuple[Pubkey, Account]]:
    """Token accounts whose (mint, owner, program) ``keep`` accepts, in address order."""
    out: list[tuple[Pubkey, Account]] = []
    for address, (mint, owner, program, _amount) in ledger.token_entries():
        if keep(mint, owner, program):
            acc = ledger.account(address)
            if acc is not None:
                out.append((address, acc))
    return sorted(out, key=lambda kv: bytes(kv[0]))


def token_accounts_by_owner(ledger: EmbeddedLedger, owner: Pubkey, *, mint: Pubkey | None = None,
                            program: Pubkey | None = None) -> list[tuple[Pubkey, Account]]:
    """Token accounts whose token owner is ``owner`` (every token account was written through this ledger, so its
    token cache indexes them all)."""
    o, m, p = str(owner), str(mint) if mint else None, str(program) if program else None
    return token_accounts(ledger, lambda mi, ow, pr: ow == o and m in (None, mi) and p in (None, pr))


def largest_token_accounts(ledger: EmbeddedLedger, mint: Pubkey, n: int = 20) -> list[tuple[Pubkey, int]]:
    """The ``n`` largest token accounts of ``mint`` by amount (ties by address)."""
    m = str(mint)
    entries = [(a, amount) for a, (mi, _o, _p, amount) in ledger.token_entries() if mi == m
               and ledger.account(a) is not None]
    entries.sort(key=lambda e: (-e[1], bytes(e[0])))
    return entries[:n]


def program_accounts(ledger: EmbeddedLedger, program: Pubkey,
                     keep: Callable[[bytes], bool]) -> list[tuple[Pubkey, Account]]:
    """Accounts owned by ``program`` whose data ``keep`` accepts, in address order."""
    out: list[tuple[Pubkey, Account]] = []
    for address in ledger.known_accounts():
        acc = ledger.account(address)
        if acc is not None and acc.owner == program and keep(acc.data):
            out.append((address, acc))
    return sorted(out, key=lambda kv: bytes(kv[0]))
