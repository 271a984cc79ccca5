"""The mint worker: reconciles, plans, records (write-ahead), sends and confirms mint transactions.

Exactly once, even across crashes:

1. **Reconcile first.** Every transaction recorded as submitted is looked up by signature before anything new is
   planned: landed without error -> its intents are confirmed; landed with an error (no effect on chain) -> its
   intents go back to pending; unknown while the chain is still at or below its last valid block height -> it is
   re-broadcast from its recorded bytes (same signature, so it can land at most once) and the worker waits;
   unknown once the chain is past that height -> it can never land, its intents go back to pending.
2. **Record before send.** A new transaction's signature, last valid block height and signed bytes are committed
   together with its intents' state ``submitted`` before it is sent. A crash after the commit and before or after
   the send is resolved by step 1; a crash before the commit leaves the intents pending and nothing was sent.
3. **One submitter.** Callers run the worker under a PostgreSQL advisory lock (``pg_store.submitter_lock``), and
   recording a submission fails if any of its intents is no longer pending.

So an intent is never sent again while a previous transaction of it could still land, and a (meter, window) is
minted at most once; it is minted at least once because every non-landing ends back in pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger.builder import sign
from central.ledger.errors import LedgerError, TransactionRejectedError
from central.ledger.port import SignatureStatus
from central.minting.memo import mint_memo, mints_root
from central.minting.plan import MintAccounts, destination, intents_of, plan_transactions
from central.minting.store import MintStore, OpenTx, PlannedTx, StaleIntentsError, TxResult
from central.wallets.chain import Chain

log = logging.getLogger(__name__)

#: Commitment levels at which a landed mint counts as confirmed.
COMMITTED = frozenset({"confirmed", "finalized"})
#: Test hook points: called with "recorded" (after the write-ahead commit, before sending) and "sent".
CrashHook = Callable[[str], None]


@dataclass
class MintStats:
    confirmed_intents: int = 0
    transactions: int = 0


class MintWorker:
    def __init__(
        self,
        store: MintStore,
        chain: Chain,
        *,
        batch: int = 4000,
        max_attempts: int = 3,
        confirm_timeout_s: float = 60.0,
        poll_s: float = 0.05,
        crash_hook: CrashHook | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        self.batch = batch
        self.max_attempts = max_attempts
        self.confirm_timeout_s = confirm_timeout_s
        self.poll_s = poll_s
        self.crash_hook = crash_hook
        self.accounts = MintAccounts(chain.fee_payer.pubkey, chain.energy_mint, chain.mint_authority.pubkey)

    # ------------------------------------------------------------------------------------------ reconciliation

    async def _classify(self, txs: Sequence[OpenTx]) -> tuple[list[TxResult], list[OpenTx]]:
        """Settle what can be settled; return (results, still open)."""
        height = await self.chain.ledger.get_block_height()  # first: a status read after it is at least as new
        statuses = await self.chain.ledger.get_signature_statuses([Signature.from_string(t.signature) for t in txs])
        results: list[TxResult] = []
        still: list[OpenTx] = []
        for t, st in zip(txs, statuses, strict=True):
            res = _result(t, st, height)
            if res is None:
                still.append(t)
            else:
                results.append(res)
        return results, still

    async def reconcile(self, *, wait: bool = True) -> int:
        """Settle every open transaction (re-broadcasting those that can still land). Returns how many settled."""
        open_txs = await self.store.open_txs()
        settled = 0
        deadline = time.monotonic() + self.confirm_timeout_s
        rebroadcast = True
        while open_txs:
            results, open_txs = await self._classify(open_txs)
            if results:
                await self.store.settle(results, self.max_attempts)
                settled += len(results)
            if not open_txs or not wait:
                break
            if rebroadcast:
                for t in open_txs:
                    await self._send_raw(t.raw)
                rebroadcast = False
            if time.monotonic() > deadline:
                raise LedgerError(f"{len(open_txs)} mint transactions still unsettled after {self.confirm_timeout_s}s")
            await asyncio.sleep(self.poll_s)
        return settled

    async def _send_raw(self, raw: bytes) -> None:
        try:
            await self.chain.ledger.send_transaction(VersionedTransaction.from_bytes(raw))
        except TransactionRejectedError as exc:
            # not accepted now (e.g. blockhash gone): it settles as expired once past its last valid height
            log.info("mint transaction re-broadcast refused: %s", exc)

    # ------------------------------------------------------------------------------------------ submission

    async def _existing_atas(self, wallets: set[str]) -> set[Pubkey]:
        atas = [destination(w, self.chain.energy_mint) for w in wallets]
        accounts = await self.chain.ledger.get_multiple_accounts(atas)
        return {a for a, acc in zip(atas, accounts, strict=True) if acc is not None}

    async def submit_once(self) -> int:
        """Plan, record, send and confirm one batch of pending intents; returns how many were confirmed."""
        intents = await self.store.pending(self.batch)
        if not intents:
            return 0
        existing = await self._existing_atas({i.wallet for i in intents})
        latest = await self.chain.ledger.get_latest_blockhash()
        signers = [self.chain.fee_payer, self.chain.mint_authority]
        planned = []
        for p in plan_transactions(intents, self.accounts, latest.blockhash, existing):
            tx = sign(p.message, signers)
            group = tuple(intents_of(p.units))
            leaves = [i.leaf for i in group]
            planned.append(
                PlannedTx(
                    str(tx.signatures[0]),
                    latest.last_valid_block_height,
                    bytes(tx),
                    mint_memo(leaves),
                    mints_root(leaves),
                    group,
                )
            )
        try:
            tx_ids = await self.store.record_submission(planned)
        except StaleIntentsError as exc:
            log.warning("mint batch not recorded: %s", exc)
            return 0
        self._hook("recorded")
        for t in planned:
            await self._send_raw(t.raw)
        self._hook("sent")
        open_txs = [
            OpenTx(tx_id, t.signature, t.last_valid_block_height, t.raw)
            for tx_id, t in zip(tx_ids, planned, strict=True)
        ]
        sizes = {tx_id: len(t.intents) for tx_id, t in zip(tx_ids, planned, strict=True)}
        confirmed = 0
        deadline = time.monotonic() + self.confirm_timeout_s
        while open_txs:
            results, open_txs = await self._classify(open_txs)
            if results:
                await self.store.settle(results, self.max_attempts)
                confirmed += sum(sizes[r.tx_id] for r in results if r.outcome == "confirmed")
            if open_txs:
                if time.monotonic() > deadline:
                    log.warning("%d mint transactions unconfirmed; reconciled on the next pass", len(open_txs))
                    break
                await asyncio.sleep(self.poll_s)
        return confirmed

    async def run_until_idle(self) -> int:
        """Reconcile, then submit batches until nothing is pending. Returns the intents confirmed."""
        await self.reconcile()
        total = 0
        while True:
            n = await self.submit_once()
            if n == 0 and not await self.store.pending(1):
                return total
            total += n
            if n == 0:
                await self.reconcile()

    def _hook(self, point: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(point)


def _result(t: OpenTx, st: SignatureStatus | None, height: int) -> TxResult | None:
    if st is not None:
        if st.confirmation_status not in COMMITTED:
            return None  # processed but not yet confirmed: could still be dropped by a fork
        if st.err is None:
            return TxResult(t.tx_id, "confirmed", st.slot)
        return TxResult(t.tx_id, "failed", st.slot, json.dumps(st.err, default=str))
    if height > t.last_valid_block_height:
        return TxResult(t.tx_id, "expired", None, "expired without landing")
    return None
