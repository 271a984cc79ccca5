"""The embedded ledger's JSON-RPC through the ecosystem's own clients, as outside testers use it: solana-py's
``AsyncClient`` with its default arguments, and the answers a node gives that clients act on (a duplicate send)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.models import DataSliceOpts, MemcmpOpts, TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction_status import TransactionErrorFieldless

from central.ledger.builder import build_transaction, memo
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import RpcLimits, serve
from central.ledger.tokens import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from .helpers import funded, mint_to_owner, new_mint


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[AsyncClient, EmbeddedLedger]]:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "l", slot_ms=0))
    server = await serve(ledger, "127.0.0.1", 0, limits=RpcLimits(airdrop=True))
    client = AsyncClient(server.url)
    try:
        yield client, ledger
    finally:
        await client.close()
        await server.close()
        await ledger.close()


async def test_solana_py_default_arguments_are_accepted(node: tuple[AsyncClient, EmbeddedLedger]) -> None:
    # solana-py sends the arguments left at their defaults as null ("encoding": null, "limit": null); a node treats
    # a null optional field as absent. The endpoint refused them as invalid params.
    client, ledger = node
    payer, authority, owner = await funded(ledger), Keypair(), Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    ata = await mint_to_owner(ledger, payer, authority, mint, owner.pubkey(), 700)
    found = (await client.get_program_accounts(TOKEN_PROGRAM_ID, filters=[165, MemcmpOpts(offset=0, bytes=str(mint))])
             ).value
    assert [k.pubkey for k in found] == [ata]
    sliced = (await client.get_program_accounts(TOKEN_PROGRAM_ID, filters=[MemcmpOpts(offset=0, bytes=str(mint))],
                                                data_slice=DataSliceOpts(offset=32, length=32))).value
    assert bytes(sliced[0].account.data) == bytes(owner.pubkey())
    history = (await client.get_signatures_for_address(mint)).value
    assert len(history) == 2
    assert [h.signature for h in (await client.get_signatures_for_address(mint, before=history[0].signature)).value
            ] == [history[1].signature]


async def test_a_duplicate_sent_with_preflight_is_already_processed(node: tuple[AsyncClient, EmbeddedLedger]) -> None:
    # A node answers a duplicate's preflight with -32002 and err "AlreadyProcessed" (clients and wallets read it as
    # "landed"); the endpoint answered -32003, which clients read as a bad signature.
    client, ledger = node
    payer = await funded(ledger)
    tx = build_transaction(payer, [memo("once")], ledger.latest_blockhash().blockhash)
    sig = (await client.send_transaction(tx)).value
    assert (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value == sig
    with pytest.raises(RPCException) as refused:
        await client.send_transaction(tx)
    err = refused.value.args[0]
    assert isinstance(err, SendTransactionPreflightFailureMessage), err
    assert "already been processed" in err.message
    assert "AlreadyProcessed" in repr(err.data.err)


async def test_simulation_returns_the_accounts_asked_for(node: tuple[AsyncClient, EmbeddedLedger]) -> None:
    # simulateTransaction's accounts option (what a wallet's balance-change preview reads): the accounts as they
    # would be after the transaction, null for each when it fails. The endpoint answered accounts: null.
    client, ledger = node
    payer, to = await funded(ledger), Keypair().pubkey()
    blockhash = ledger.latest_blockhash().blockhash
    tx = build_transaction(payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to,
                                                           lamports=3_000_000))], blockhash)
    before = ledger.account(payer.pubkey())
    assert before is not None
    sim = (await client.simulate_transaction(tx, accounts_addresses=[to, payer.pubkey()])).value
    assert sim.err is None
    assert sim.accounts is not None
    after_to, after_payer = sim.accounts
    assert after_to is not None
    assert after_payer is not None
    assert after_to.lamports == 3_000_000
    assert after_payer.lamports < before.lamports - 3_000_000
    assert ledger.account(to) is None  # nothing landed
    too_much = build_transaction(payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to,
                                                                 lamports=before.lamports * 2))], blockhash)
    failed = (await client.simulate_transaction(too_much, accounts_addresses=[to])).value
    assert failed.err is not None
    assert failed.accounts == [None]
    with pytest.raises(RPCException):
        await client.simulate_transaction(tx, accounts_addresses=[to], accounts_encoding="base58")


async def test_simulation_checks_the_blockhash_unless_replaced(node: tuple[AsyncClient, EmbeddedLedger]) -> None:
    # As a node: an unknown or expired blockhash is err BlockhashNotFound (the endpoint simulated it as fine, and the
    # send then failed); replaceRecentBlockhash simulates with the latest one; it may not be used with sigVerify.
    client, ledger = node
    payer = await funded(ledger)
    stale = build_transaction(payer, [memo("stale")], Hash.new_unique())
    assert (await client.simulate_transaction(stale)).value.err == TransactionErrorFieldless.BlockhashNotFound
    replaced = (await client.simulate_transaction(stale, replace_recent_blockhash=True)).value
    assert replaced.err is None
    assert replaced.replacement_blockhash is not None
    with pytest.raises(RPCException) as refused:
        await client.simulate_transaction(stale, sig_verify=True, replace_recent_blockhash=True)
    assert "sigVerify may not be used with replaceRecentBlockhash" in str(refused.value)
    fresh = build_transaction(payer, [memo("fresh")], ledger.latest_blockhash().blockhash)
    assert (await client.simulate_transaction(fresh, sig_verify=True)).value.err is None


async def test_token_accounts_of_a_program_that_is_not_a_token_program(node: tuple[AsyncClient, EmbeddedLedger]
                                                                        ) -> None:
    # A node refuses it (-32602 "unrecognized Token program id"); the endpoint answered an empty list.
    client, _ledger = node
    for ask in (client.get_token_accounts_by_owner, client.get_token_accounts_by_delegate):
        with pytest.raises(RPCException) as refused:
            await ask(Keypair().pubkey(), TokenAccountOpts(program_id=SYSTEM_PROGRAM_ID))
        assert "unrecognized Token program id" in str(refused.value)
    assert (await client.get_token_accounts_by_owner(Keypair().pubkey(), TokenAccountOpts(
        program_id=TOKEN_2022_PROGRAM_ID))).value == []
