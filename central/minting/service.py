"""Minting on the chain outbox (``central.chain.outbox``, owned by the ledger subsystem).

- Accounting enqueues one intent per final (meter, window) with exported energy, kind :data:`MINT_KIND`, key
  ``"<meter>:<window start>"`` (unique), in the same database transaction that records the window
  (``central.accounting.pg_store.enqueue_mints``). So a window is minted at most once and never forgotten.
- The outbox claims pending intents and asks :class:`MintBuilder` for units: the builder looks up the owners' linked
  wallets; intents of owners without one are left out, which the outbox defers (they *accrue*);
  ``release_accrued`` makes them claimable at once after the owner links a wallet (``central.bootstrap`` binds it
  as the wallets' ``on_linked``).
- Everything about exactly-once submission (write-ahead record, reconcile by signature status and expiry before
  anything new, re-broadcast of the same bytes) is the outbox's; see its module docstring.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from solders.instruction import Instruction

from central.accounting.mint_intent import MINT_KIND, MintIntent
from central.accounting.mint_memo import MintLeaf
from central.chain.outbox import ChainOutbox, Intent, OutboxConfig
from central.ledger.packing import Unit
from central.ledger.platform import Platform
from central.minting.plan import MintAccounts, destination, memo_instruction, mint_units


async def release_accrued(conn: Any, owner_id: uuid.UUID) -> int:
    """Make the owner's deferred (accrued) mint intents claimable now, e.g. right after a wallet was linked."""
    status: str = await conn.execute(
        "UPDATE chain_intent SET not_before = NULL, updated_at = now() "
        "WHERE kind = $1 AND state = 'pending' AND not_before IS NOT NULL AND payload->>'owner' = $2",
        MINT_KIND,
        str(owner_id),
    )
    return int(status.rsplit(" ", 1)[-1])


class MintBuilder:
    """The outbox's unit builder for energy mints, and the memo trailer for its transactions."""

    def __init__(self, pool: Any, chain: Platform) -> None:
        self._pool = pool
        self._chain = chain
        self._accounts = MintAccounts(chain.fee_payer.pubkey, chain.energy_mint, chain.mint_authority.pubkey)
        self._claimed: dict[int, MintIntent] = {}
        self._nodes: dict[MintLeaf, bytes] = {}

    async def __call__(self, intents: Sequence[Intent]) -> Sequence[Unit]:
        mints = [MintIntent.from_payload(i.id, i.payload) for i in intents]
        if not all(m.id in self._claimed for m in mints):
            # A new round. (The outbox re-builds subsets of a round's intents to split a unit that does not fit:
            # then the trailer still needs every intent of the round.)
            self._claimed, self._nodes = {}, {}
        self._claimed.update((m.id, m) for m in mints)
        self._nodes.update((m.leaf, m.leaf.node()) for m in mints)  # the trailer runs once per packing trial
        owners = sorted({m.owner_id for m in mints})
        rows = await self._pool.fetch("SELECT user_id, address FROM wallets WHERE user_id = ANY($1::uuid[])", owners)
        wallets = {r["user_id"]: r["address"] for r in rows}
        atas = [destination(w, self._chain.energy_mint) for w in set(wallets.values())]
        accounts = await self._chain.ledger.get_multiple_accounts(atas)
        existing = {a for a, acc in zip(atas, accounts, strict=True) if acc is not None}
        return mint_units(mints, wallets, self._accounts, existing, solo={i.id for i in intents if i.solo})

    def trailer(self, units: Sequence[Unit]) -> list[Instruction]:
        leaves: list[MintLeaf] = []
        for u in units:
            assert isinstance(u.tag, tuple)
            leaves.extend(self._claimed[i].leaf for i in u.tag)
        return [memo_instruction(leaves, self._nodes)]


def mint_outbox(
    pool: Any,
    chain: Platform,
    *,
    batch_size: int = 4000,
    defer_seconds: float = 30.0,
    hook: Callable[[str], None] | None = None,
) -> ChainOutbox:
    builder = MintBuilder(pool, chain)
    return ChainOutbox(
        pool,
        chain.ledger,
        OutboxConfig(MINT_KIND, batch_size=batch_size, defer_seconds=defer_seconds),
        payer=chain.fee_payer,
        signers=[chain.mint_authority],
        build=builder,
        trailer=builder.trailer,
        hook=hook,
    )
