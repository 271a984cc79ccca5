"""Packing never splits a unit and never exceeds the size limit; v0 + lookup tables batch more per transaction."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.hash import Hash
from solders.keypair import Keypair

from central.ledger.builder import (
    associated_token_address,
    memo,
    mint_to_checked,
    sign,
    transfer_checked,
    wait_for_statuses,
)
from central.ledger.errors import TransactionTooLargeError
from central.ledger.lookup import create_table, load_lookup_table
from central.ledger.packing import Unit, pack
from central.ledger.port import MAX_TRANSACTION_SIZE
from central.ledger.tokens import TOKEN_PROGRAM_ID
from tests.central.ledger.ledger_env import LedgerEnv

from .helpers import funded, mint_to_owner, new_mint

PAYER = Keypair().pubkey()
AUTH = Keypair().pubkey()
MINT = Keypair().pubkey()


def _mint_unit(tag: int, n_dest: int, memo_len: int) -> Unit:
    ixs = [mint_to_checked(MINT, Keypair().pubkey(), AUTH, amount=tag + 1, decimals=3) for _ in range(n_dest)]
    if memo_len:
        ixs.append(memo("m" * memo_len))
    return Unit(tuple(ixs), tag=tag, compute_units=5_000 * n_dest)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 300)), min_size=1, max_size=60))
def test_pack_keeps_units_whole_and_fits(shapes: list[tuple[int, int]]) -> None:
    units = [_mint_unit(i, n, m) for i, (n, m) in enumerate(shapes)]
    packed = pack(units, payer=PAYER, blockhash=Hash.new_unique(),
                  trailer=lambda us: [memo(",".join(str(u.tag) for u in us))])
    assert [t for p in packed for t in p.tags] == list(range(len(units)))  # in order, each exactly once
    for p in packed:
        assert p.size <= MAX_TRANSACTION_SIZE
        n_ix = sum(len(u.instructions) for u in p.units)
        assert len(p.message.instructions) == n_ix + 2  # compute limit + trailer memo
    # Greedy: no two consecutive transactions could have been merged into one.
    for a, b in itertools.pairwise(packed):
        merged = pack([*a.units, b.units[0]], payer=PAYER, blockhash=Hash.new_unique(),
                      trailer=lambda us: [memo(",".join(str(u.tag) for u in us))])
        assert len(merged) == 2


def test_pack_refuses_a_unit_that_cannot_fit_alone() -> None:
    with pytest.raises(TransactionTooLargeError):
        pack([Unit((memo("x" * 1300),))], payer=PAYER, blockhash=Hash.new_unique())


def test_pack_respects_compute_budget_and_max_units() -> None:
    units = [_mint_unit(i, 1, 0) for i in range(10)]
    by_cu = pack(units, payer=PAYER, blockhash=Hash.new_unique(), max_compute_units=20_000 + 4096 + 15_000)
    assert [len(p.units) for p in by_cu] == [3, 3, 3, 1]
    by_count = pack(units, payer=PAYER, blockhash=Hash.new_unique(), max_units=4)
    assert [len(p.units) for p in by_count] == [4, 4, 2]


async def test_lookup_table_batches_settlement_style_units(ticking_chain: LedgerEnv) -> None:
    """One 'trade' = 3 transfers that must stay together; with a lookup table many more fit per transaction."""
    ledger = ticking_chain.ledger
    payer = await funded(ledger)
    authority = Keypair()
    escrow = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    sellers = [Keypair().pubkey() for _ in range(12)]
    src = await mint_to_owner(ledger, payer, authority, mint, escrow.pubkey(), 10_000)
    dests = [await mint_to_owner(ledger, payer, authority, mint, s, 0) for s in sellers]
    units = [
        Unit(tuple(transfer_checked(src, mint, d, escrow.pubkey(), amount=a, decimals=3) for a in (1, 2, 3)),
             tag=i)
        for i, d in enumerate(dests)
    ]
    latest = await ledger.get_latest_blockhash()
    plain = pack(units, payer=payer.pubkey(), blockhash=latest.blockhash)
    table = await create_table(ledger, payer, payer, [src, mint, escrow.pubkey(), TOKEN_PROGRAM_ID, *dests])
    alt = await load_lookup_table(ledger, table)
    assert set(alt.addresses) >= {src, *dests}
    latest = await ledger.get_latest_blockhash()
    packed = pack(units, payer=payer.pubkey(), blockhash=latest.blockhash, lookup_tables=[alt])
    assert len(packed) < len(plain)
    sigs = [await ledger.send_transaction(sign(p.message, [payer, escrow])) for p in packed]
    statuses = await wait_for_statuses(ledger, sigs, last_valid_block_height=latest.last_valid_block_height)
    assert all(s is not None and s.ok for s in statuses)
    for d in dests:
        bal = await ledger.get_token_account_balance(d)
        assert bal is not None
        assert bal.amount == 6
    assert dests[0] == associated_token_address(sellers[0], mint)
