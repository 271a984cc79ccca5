"""Address lookup tables on the ledger: create, extend, load (for v0 messages that batch many accounts)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from solders.address_lookup_table_account import AddressLookupTable, AddressLookupTableAccount
from solders.pubkey import Pubkey
from solders.system_program import (
    CreateLookupTableParams,
    ExtendLookupTableParams,
    create_lookup_table,
    extend_lookup_table,
)

from central.ledger.builder import Signer, pubkey_of, send_and_confirm
from central.ledger.errors import LedgerError
from central.ledger.port import Ledger

#: Addresses per extend instruction that keep the transaction under 1232 bytes.
EXTEND_CHUNK = 30
MAX_TABLE_ADDRESSES = 256


async def _next_slot(ledger: Ledger, poll: float = 0.01) -> None:
    start = await ledger.get_slot()
    slot = start
    while slot <= start:
        await asyncio.sleep(poll)
        slot = await ledger.get_slot()


async def load_lookup_table(ledger: Ledger, table: Pubkey) -> AddressLookupTableAccount:
    acc = await ledger.get_account(table)
    if acc is None:
        raise LedgerError(f"address lookup table {table} does not exist")
    return AddressLookupTableAccount(table, list(AddressLookupTable.deserialize(acc.data).addresses))


async def table_authority(ledger: Ledger, table: Pubkey) -> Pubkey | None:
    """Who may extend the table (None once frozen)."""
    acc = await ledger.get_account(table)
    if acc is None:
        raise LedgerError(f"address lookup table {table} does not exist")
    return AddressLookupTable.deserialize(acc.data).meta.authority


async def extend_table(ledger: Ledger, payer: Signer, authority: Signer, table: Pubkey,
                       addresses: Sequence[Pubkey]) -> None:
    """Append ``addresses`` (those not already in the table) in size-safe chunks, then wait until they are usable
    (lookup table entries become active one slot after the extension)."""
    current = set((await load_lookup_table(ledger, table)).addresses)
    new = [a for a in dict.fromkeys(addresses) if a not in current]
    if len(current) + len(new) > MAX_TABLE_ADDRESSES:
        raise LedgerError(f"lookup table {table} would exceed {MAX_TABLE_ADDRESSES} addresses")
    for i in range(0, len(new), EXTEND_CHUNK):
        ix = extend_lookup_table(ExtendLookupTableParams(
            payer_address=pubkey_of(payer), lookup_table_address=table, authority_address=pubkey_of(authority),
            new_addresses=new[i:i + EXTEND_CHUNK]))
        await send_and_confirm(ledger, payer, [ix], [authority])
    if new:
        await _next_slot(ledger)


async def create_table(ledger: Ledger, payer: Signer, authority: Signer,
                       addresses: Sequence[Pubkey] = ()) -> Pubkey:
    """Create a lookup table owned by ``authority`` and fill it with ``addresses``. Returns its address."""
    slot = await ledger.get_slot()
    ix, table = create_lookup_table(CreateLookupTableParams(
        authority_address=pubkey_of(authority), payer_address=pubkey_of(payer), recent_slot=slot))
    await send_and_confirm(ledger, payer, [ix], [authority] if pubkey_of(authority) != pubkey_of(payer) else [])
    if addresses:
        await extend_table(ledger, payer, authority, table, addresses)
    return table
