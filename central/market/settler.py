"""Settlement of cleared trades on chain: atomic per trade, many trades per transaction, exactly once.

One pass (``settle_once``), under a session advisory lock so only one settler works at a time:
1. ``resolve``: every batch still ``submitted`` is decided by its signature status — landed OK → ``confirmed``
   (its trades are settled and the escrow locks they owed are spent, in one database transaction); landed with an
   error → ``failed``; unknown and the chain past its last valid block height → ``expired``. Failed and expired
   batches release their trades for a new batch (they can never land any more, so nothing settles twice).
2. Pending trades without a batch are turned into units (``MarketChain.trade_unit``: three transfers + memo), the
   destination ATAs are created if missing, and ``central.ledger.packing.pack`` fills transactions without ever
   splitting a unit.
3. All new batches are recorded with their signatures and trade ids BEFORE anything is sent; then they are sent,
   awaited and resolved as in 1. A crash anywhere leaves either unrecorded (never sent) transactions or recorded
   ones that step 1 decides on the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger.builder import create_ata_idempotent, send_and_confirm, sign, wait_for_statuses
from central.ledger.errors import LedgerError, TransactionRejectedError
from central.ledger.packing import Unit, pack
from central.ledger.port import Ledger
from central.market.book import lock_balances, notify
from central.market.chain import MarketChain
from central.market.escrow_seeds import Asset

log = logging.getLogger(__name__)

#: Session advisory-lock key of the settler ("gtx-stl" in ASCII).
SETTLER_LOCK_KEY = 0x6774782D73746C


@dataclass(frozen=True)
class SettleReport:
    batches: int = 0
    trades_submitted: int = 0
    trades_settled: int = 0
    released: int = 0


class Settler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ledger: Ledger,
        chain: MarketChain,
        *,
        max_trades: int = 4096,
        wait_s: float = 30.0,
        lookup_tables: Sequence[AddressLookupTableAccount] = (),
        crash_point: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.pool = pool
        self.ledger = ledger
        self.chain = chain
        self.max_trades = max_trades
        self.wait_s = wait_s
        self.lookup_tables = list(lookup_tables)
        #: Test hook for crash simulation, awaited with "recorded" (batches recorded, nothing sent) and "sent"
        #: (sent, outcome not yet recorded).
        self.crash_point = crash_point
        self._known_atas: set[Pubkey] = set()

    async def settle_once(self) -> SettleReport:
        async with self.pool.acquire() as lock_conn:
            if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", SETTLER_LOCK_KEY):
                return SettleReport()
            try:
                return await self._settle_once()
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock($1)", SETTLER_LOCK_KEY)

    async def settle_all(self, max_passes: int = 1000) -> int:
        """Settle until nothing is pending (tests, demo, bench). Returns trades settled."""
        total = 0
        for _ in range(max_passes):
            r = await self.settle_once()
            total += r.trades_settled
            if r.trades_submitted == 0 and r.released == 0:
                break
        return total

    async def _settle_once(self) -> SettleReport:
        settled, released = await self.resolve()
        rows = await self.pool.fetch(
            "SELECT id, buyer, seller, buyer_wallet, seller_wallet, qty, value, fee FROM trades "
            "WHERE status = 'pending' AND batch_id IS NULL ORDER BY id LIMIT $1",
            self.max_trades,
        )
        if not rows:
            return SettleReport(0, 0, settled, released)
        await self._ensure_atas(rows)
        units = [
            self.chain.trade_unit(
                r["id"],
                r["buyer"],
                r["seller"],
                Pubkey.from_string(r["buyer_wallet"]),
                Pubkey.from_string(r["seller_wallet"]),
                r["qty"],
                r["value"],
                r["fee"],
            )
            for r in rows
        ]
        latest = await self.ledger.get_latest_blockhash()
        packed = pack(
            units, payer=self.chain.fee_payer.pubkey, blockhash=latest.blockhash, lookup_tables=self.lookup_tables
        )
        txs = [sign(p.message, [self.chain.fee_payer, self.chain.escrow_authority]) for p in packed]
        async with self.pool.acquire() as conn, conn.transaction():
            batch_ids = await conn.fetch(
                "INSERT INTO settlement_batches (signature, last_valid_block_height, trade_count) "
                "SELECT unnest($1::text[]), $2, unnest($3::int[]) RETURNING id, signature",
                [str(tx.signatures[0]) for tx in txs],
                latest.last_valid_block_height,
                [len(p.units) for p in packed],
            )
            by_sig = {r["signature"]: r["id"] for r in batch_ids}
            trade_ids: list[int] = []
            batch_of: list[int] = []
            for p, tx in zip(packed, txs, strict=True):
                for tag in p.tags:
                    assert isinstance(tag, int)
                    trade_ids.append(tag)
                    batch_of.append(by_sig[str(tx.signatures[0])])
            await conn.execute(
                "UPDATE trades t SET batch_id = u.batch, attempts = t.attempts + 1 "
                "FROM unnest($1::bigint[], $2::bigint[]) AS u(id, batch) WHERE t.id = u.id",
                trade_ids,
                batch_of,
            )
        if self.crash_point is not None:
            await self.crash_point("recorded")
        for tx in txs:
            try:
                await self.ledger.send_transaction(tx, skip_preflight=True)
            except TransactionRejectedError as e:  # refused outright: it cannot land
                await self._release(by_sig[str(tx.signatures[0])], "expired", str(e))
            except LedgerError:
                log.warning("settlement batch send failed; resolved on a later pass", exc_info=True)
        if self.crash_point is not None:
            await self.crash_point("sent")
        try:
            await wait_for_statuses(
                self.ledger,
                [tx.signatures[0] for tx in txs],
                last_valid_block_height=latest.last_valid_block_height,
                wait_seconds=self.wait_s,
            )
        except LedgerError:
            log.warning("settlement confirmation timed out; resolved on a later pass")
        s2, r2 = await self.resolve()
        return SettleReport(len(txs), len(rows), settled + s2, released + r2)

    async def _ensure_atas(self, rows: Sequence[asyncpg.Record]) -> None:
        """Create missing destination ATAs (buyers' energy, sellers' quote) before settlement transactions."""
        wanted: dict[Pubkey, tuple[Pubkey, Pubkey]] = {}
        for r in rows:
            for wallet, asset in ((r["buyer_wallet"], Asset.ENERGY), (r["seller_wallet"], Asset.QUOTE)):
                owner = Pubkey.from_string(wallet)
                ata = self.chain.wallet_ata(owner, asset)
                if ata not in self._known_atas:
                    wanted[ata] = (owner, self.chain.mint(asset))
        if not wanted:
            return
        addresses = list(wanted)
        accounts = await self.ledger.get_multiple_accounts(addresses)
        missing = [a for a, acc in zip(addresses, accounts, strict=True) if acc is None]
        self._known_atas.update(a for a, acc in zip(addresses, accounts, strict=True) if acc is not None)
        if not missing:
            return
        payer = self.chain.fee_payer
        units = [Unit((create_ata_idempotent(payer.pubkey, *wanted[a]),), tag=a) for a in missing]
        latest = await self.ledger.get_latest_blockhash()
        for p in pack(units, payer=payer.pubkey, blockhash=latest.blockhash):
            await send_and_confirm(self.ledger, payer, [ix for u in p.units for ix in u.instructions])
        self._known_atas.update(missing)

    async def resolve(self) -> tuple[int, int]:
        """Decide submitted batches; returns (trades settled, trades released)."""
        rows = await self.pool.fetch(
            "SELECT id, signature, last_valid_block_height FROM settlement_batches WHERE status = 'submitted' "
            "ORDER BY id"
        )
        if not rows:
            return 0, 0
        height = await self.ledger.get_block_height()
        statuses = await self.ledger.get_signature_statuses([Signature.from_string(r["signature"]) for r in rows])
        ok: list[tuple[int, str]] = []
        released = 0
        for r, st in zip(rows, statuses, strict=True):
            if st is not None and st.ok:
                ok.append((r["id"], r["signature"]))
            elif st is not None:
                released += await self._release(r["id"], "failed", str(st.err))
                log.error("settlement batch %s landed with error %s; its trades will be retried", r["id"], st.err)
            elif height > r["last_valid_block_height"]:
                released += await self._release(r["id"], "expired", "blockhash expired before it landed")
        settled = await self._confirm(ok) if ok else 0
        return settled, released

    async def _release(self, batch_id: int, status: str, error: str) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE settlement_batches SET status = $2, error = $3, finished_at = now() "
                "WHERE id = $1 AND status = 'submitted' RETURNING id",
                batch_id,
                status,
                error,
            )
            if done is None:
                return 0
            n = await conn.execute(
                "UPDATE trades SET batch_id = NULL WHERE batch_id = $1 AND status = 'pending'", batch_id
            )
            return int(n.split()[-1])

    async def _confirm(self, batches: list[tuple[int, str]]) -> int:
        """Record landed batches in one database transaction: trades settled, owed escrow locks spent."""
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetch(
                "UPDATE settlement_batches SET status = 'confirmed', finished_at = now() "
                "WHERE id = ANY($1::bigint[]) AND status = 'submitted' RETURNING id, signature",
                [b for b, _ in batches],
            )
            if not done:
                return 0
            trades = await conn.fetch(
                "UPDATE trades t SET status = 'settled', signature = b.signature, settled_at = now() "
                "FROM unnest($1::bigint[], $2::text[]) AS b(id, signature) "
                "WHERE t.batch_id = b.id AND t.status = 'pending' "
                "RETURNING t.id, t.epoch_start, t.buyer, t.seller, t.qty, t.price, t.value, t.fee",
                [r["id"] for r in done],
                [r["signature"] for r in done],
            )
            spent: dict[tuple[int, str], int] = {}
            for t in trades:
                spent[(t["buyer"], "quote")] = spent.get((t["buyer"], "quote"), 0) + t["value"]
                spent[(t["seller"], "energy")] = spent.get((t["seller"], "energy"), 0) + t["qty"]
            await conn.execute("CREATE TEMP TABLE _spent (account bigint, asset text, amount bigint) ON COMMIT DROP")
            await conn.copy_records_to_table("_spent", records=[(a, s, v) for (a, s), v in spent.items()])
            await lock_balances(conn, "_spent")
            await conn.execute(
                "UPDATE escrow_balances b SET locked = b.locked - s.amount, updated_at = now() FROM _spent s "
                "WHERE b.account = s.account AND b.asset = s.asset"
            )
            epochs = sorted({t["epoch_start"] for t in trades})
            finished = await conn.fetch(
                "UPDATE epochs e SET status = 'settled', settled_at = now() WHERE e.start_at = ANY($1::timestamptz[]) "
                "AND e.status = 'cleared' AND NOT EXISTS "
                "(SELECT 1 FROM trades t WHERE t.epoch_start = e.start_at AND t.status = 'pending') RETURNING start_at",
                epochs,
            )
            await notify(
                conn,
                {
                    "type": "trades",
                    "count": len(trades),
                    "trades": [{"id": t["id"], "qty": t["qty"], "price": t["price"]} for t in trades[:50]],
                },
            )
            for e in finished:
                await notify(
                    conn, {"type": "epoch", "epoch": {"start": e["start_at"].isoformat(), "status": "settled"}}
                )
            return len(trades)
