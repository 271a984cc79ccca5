"""Settlement of cleared trades on chain: atomic per trade, many trades per transaction, exactly once.

The clearer enqueues one intent per trade (key ``trade:<id>``) into the durable chain outbox
(``central.chain.outbox``, kind ``market.settlement``) in the same database transaction that records the trades.
The outbox carries the exactly-once discipline (write-ahead submission records, reconciliation by signature status
and blockhash expiry, re-broadcast of identical bytes, failure isolation by retrying a failed batch's intents one
per transaction). This module supplies:

- the unit builder: one unit per trade (``MarketInstructions.trade_unit``: energy seller-escrow → buyer wallet, quote
  buyer-escrow → seller wallet (value - fee) and → treasury (fee), memo ``gtx:t:<id>``), after creating any
  missing destination ATA; the packer never splits a unit across transactions;
- ``apply_confirmed``: for every trade whose intent the outbox has confirmed, in one database transaction: the
  trade becomes ``settled`` (with the signature), the escrow locks it owed are spent (buyer's quote value,
  seller's Wh), and epochs whose trades are all settled become ``settled``. Idempotent (only pending trades).
Between the outbox's confirmation and ``apply_confirmed`` the chain is ahead of the database; reconciliation
treats such trades as in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.pubkey import Pubkey

from central.chain.outbox import ChainOutbox, Intent, OutboxConfig
from central.ledger.builder import create_ata_idempotent, send_and_confirm
from central.ledger.packing import Unit, pack_instructions
from central.ledger.platform import Platform
from central.market.errors import MarketError
from central.market.escrow_seeds import Asset
from central.market.instructions import MarketInstructions
from central.market.plan import SETTLEMENT_KIND
from central.market.port import SettlementStore
from central.market.postgres import PgMarketStore
from central.market.tables import LookupTables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettleReport:
    submitted: int = 0
    transactions: int = 0
    confirmed: int = 0
    failed: int = 0
    settled: int = 0


class Settler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        platform: Platform,
        *,
        batch_size: int = 4096,
        tables: LookupTables | None = None,
        rebroadcast_after: float = 2.0,
        hook: Callable[[str], None] | None = None,
    ) -> None:
        self.pool = pool
        self.ledger = platform.ledger
        self.chain = chain = MarketInstructions.for_platform(platform)
        self._fee_payer = platform.fee_payer
        self._authority = platform.market_keys()[0]
        #: With tables, each pass first puts the addresses of the trades it will settle into lookup tables.
        self.tables = tables
        self.config = OutboxConfig(kind=SETTLEMENT_KIND, batch_size=batch_size, rebroadcast_after=rebroadcast_after)
        self._hook = hook
        self.store: SettlementStore = PgMarketStore(pool, chain.addresses)
        self.outbox = self._outbox(())
        self._known_atas: set[Pubkey] = set()

    def _outbox(self, lookup_tables: Sequence[AddressLookupTableAccount]) -> ChainOutbox:
        return ChainOutbox(
            self.pool,
            self.ledger,
            self.config,
            payer=self._fee_payer,
            signers=[self._authority],
            build=self._build,
            lookup_tables=lookup_tables,
            hook=self._hook,
        )

    async def prepare_tables(self) -> None:
        if self.tables is None:
            return
        payloads = await self.store.pending_settlements(self.config.batch_size)
        if not payloads:
            return
        c = self.chain
        addresses = self.tables.statics()
        for p in payloads:
            addresses += [
                c.escrow(p["seller"], Asset.ENERGY),
                c.wallet_ata(Pubkey.from_string(p["buyer_wallet"]), Asset.ENERGY),
                c.escrow(p["buyer"], Asset.QUOTE),
                c.wallet_ata(Pubkey.from_string(p["seller_wallet"]), Asset.QUOTE),
            ]
            if op := p.get("grid_operator"):
                operator = Pubkey.from_string(op)
                addresses += [c.wallet_ata(operator, Asset.ENERGY), c.wallet_ata(operator, Asset.QUOTE)]
        self.outbox = self._outbox(await self.tables.cover(addresses))

    async def settle_once(self) -> SettleReport:
        """One outbox step (reconcile, then submit what is pending), then record what the chain confirmed."""
        await self.prepare_tables()
        r = await self.outbox.step()
        settled = await self.apply_confirmed()
        return SettleReport(r.submitted, r.transactions, r.confirmed, r.failed, settled)

    async def settle_all(self, max_seconds: float = 120.0) -> int:
        """Step until nothing is open, recording as it goes (tests, demo, bench). Returns trades settled."""
        deadline = time.monotonic() + max_seconds
        settled = 0
        while True:
            r = await self.settle_once()
            settled += r.settled
            open_work = await self.store.open_settlements()
            if open_work == 0:
                return settled + await self.apply_confirmed()
            if time.monotonic() > deadline:
                raise MarketError(f"settlement did not finish within {max_seconds} s ({open_work} open)")
            if r.submitted == 0:
                await asyncio.sleep(0.01)

    async def _build(self, intents: Sequence[Intent]) -> list[Unit]:
        operators = {op for i in intents if (op := i.payload.get("grid_operator"))}
        await self._ensure_atas(
            [(i.payload["buyer_wallet"], Asset.ENERGY) for i in intents]
            + [(i.payload["seller_wallet"], Asset.QUOTE) for i in intents]
            + [(op, asset) for op in sorted(operators) for asset in (Asset.ENERGY, Asset.QUOTE)]
        )
        out = []
        for i in intents:
            p: dict[str, Any] = i.payload
            op = p.get("grid_operator")
            unit = self.chain.trade_unit(
                p["trade"],
                p["buyer"],
                p["seller"],
                Pubkey.from_string(p["buyer_wallet"]),
                Pubkey.from_string(p["seller_wallet"]),
                p["qty"],
                p["value"],
                p["fee"],
                # Zonal trades (absent from intents enqueued before zones existed: a plain trade).
                delivered=p.get("delivered"),
                grid_fee_seller=p.get("grid_fee_seller", 0),
                grid_fee_buyer=p.get("grid_fee_buyer", 0),
                grid_operator=Pubkey.from_string(op) if op else None,
            )
            out.append(replace(unit, tag=i.id))
        return out

    async def _ensure_atas(self, wanted_list: Sequence[tuple[str, Asset]]) -> None:
        """Create missing destination ATAs (buyers' energy, sellers' quote) before settlement transactions."""
        wanted: dict[Pubkey, tuple[Pubkey, Pubkey]] = {}
        for wallet, asset in wanted_list:
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
        creations = [create_ata_idempotent(self.chain.payer, *wanted[a]) for a in missing]
        for group in pack_instructions(creations, payer=self.chain.payer):
            await send_and_confirm(self.ledger, self._fee_payer, group)
        self._known_atas.update(missing)

    async def apply_confirmed(self) -> int:
        """Record every trade the outbox confirmed (one database transaction). Returns how many."""
        return await self.store.apply_settled()
