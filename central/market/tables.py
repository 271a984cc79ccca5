"""Address lookup tables for settlement transactions (v0 messages): each address a trade touches (escrow accounts,
wallet ATAs, mints, treasury ATA) costs one byte instead of 32 once it sits in a table, so about twice as many
trades fit in a 1232-byte transaction.

Tables are created and extended by the fee payer (also their authority; after a rotation of the fee payer's key the
older tables are still read, and new addresses go to tables of the new payer) and recorded in
``market_lookup_tables`` so every worker reuses them. Growing them is serialised across processes by a session
advisory lock. A table entry is usable one slot after the extension (``central.ledger.lookup.extend_table`` waits
for it).
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.pubkey import Pubkey

from central import locks
from central.ledger.lookup import MAX_TABLE_ADDRESSES, create_table, extend_table, load_lookup_table, table_authority
from central.ledger.platform import Platform
from central.market.instructions import MarketInstructions

#: Session advisory-lock key for growing the tables (``central.locks``).
TABLES_LOCK_KEY = locks.MARKET_TABLES.key


class LookupTables:
    def __init__(self, pool: asyncpg.Pool, platform: Platform) -> None:
        self.pool = pool
        self.ledger = platform.ledger
        self.chain = MarketInstructions.for_platform(platform)
        self._fee_payer = platform.fee_payer
        self._tables: dict[Pubkey, AddressLookupTableAccount] = {}
        self._where: dict[Pubkey, Pubkey] = {}
        #: tables this fee payer may extend (its own: after a fee payer rotation, older tables are read-only)
        self._ours: set[Pubkey] = set()

    async def _reload(self) -> None:
        for row in await self.pool.fetch("SELECT address FROM market_lookup_tables ORDER BY created_at, address"):
            table = Pubkey.from_string(row["address"])
            account = await load_lookup_table(self.ledger, table)
            self._tables[table] = account
            if await table_authority(self.ledger, table) == self._fee_payer.pubkey:
                self._ours.add(table)
            for a in account.addresses:
                self._where.setdefault(a, table)

    async def cover(self, addresses: Iterable[Pubkey]) -> list[AddressLookupTableAccount]:
        """Make sure every address is in a table; return the tables holding them."""
        wanted = list(dict.fromkeys(addresses))
        if any(a not in self._where for a in wanted):
            await self._reload()
        missing = [a for a in wanted if a not in self._where]
        if missing:
            async with self.pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", TABLES_LOCK_KEY)
                try:
                    await self._reload()
                    missing = [a for a in missing if a not in self._where]
                    await self._grow(conn, missing)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", TABLES_LOCK_KEY)
        return [self._tables[t] for t in dict.fromkeys(self._where[a] for a in wanted)]

    async def _grow(self, conn: asyncpg.Connection, missing: list[Pubkey]) -> None:
        payer = self._fee_payer
        while missing:
            newest = next((t for t in reversed(self._tables) if t in self._ours), None)
            room = MAX_TABLE_ADDRESSES - len(self._tables[newest].addresses) if newest is not None else 0
            if newest is None or room == 0:
                newest = await create_table(self.ledger, payer, payer)
                await conn.execute("INSERT INTO market_lookup_tables (address) VALUES ($1)", str(newest))
                self._ours.add(newest)
                room = MAX_TABLE_ADDRESSES
            chunk, missing = missing[:room], missing[room:]
            await extend_table(self.ledger, payer, payer, newest, chunk)
            account = await load_lookup_table(self.ledger, newest)
            self._tables[newest] = account
            for a in account.addresses:
                self._where.setdefault(a, newest)

    def statics(self) -> list[Pubkey]:
        """Addresses in every settlement transaction that a table can hold (programs and signers cannot)."""
        return [self.chain.energy_mint, self.chain.quote_mint, self.chain.treasury_ata]
