"""Contract tests of the ``Ledger`` port: every test runs against the embedded adapter and the rpc adapter."""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger import cosign
from central.ledger.builder import (
    associated_token_address,
    build_transaction,
    compile_message,
    create_token_account_with_seed,
    memo,
    mint_to_checked,
    seeded_address,
    send_and_confirm,
    sign,
    transfer_checked,
    wait_for_statuses,
)
from central.ledger.errors import (
    AlreadyProcessedError,
    BlockhashNotFoundError,
    TransactionFailedError,
    TransactionRejectedError,
    TransactionTooLargeError,
)
from central.ledger.port import MAX_PROCESSING_AGE, Ledger
from central.ledger.tokens import TOKEN_ACCOUNT_SIZE, parse_mint, parse_token_account
from tests.central.ledger.ledger_env import LedgerEnv

from .helpers import SOL, funded, mint_to_owner, new_mint


async def test_blockhash_and_block_height(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    first = await ledger.get_latest_blockhash()
    height = await ledger.get_block_height()
    assert first.last_valid_block_height == height + MAX_PROCESSING_AGE
    assert await ledger.get_slot() == height
    chain.embedded.advance_slots(3)
    second = await ledger.get_latest_blockhash()
    assert second.blockhash != first.blockhash
    assert await ledger.get_block_height() == height + 3
    assert second.last_valid_block_height == first.last_valid_block_height + 3


async def test_airdrop_balance_status_and_history(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    kp = Keypair()
    assert await ledger.get_balance(kp.pubkey()) == 0
    assert await ledger.get_account(kp.pubkey()) is None
    sig = await ledger.request_airdrop(kp.pubkey(), 3 * SOL)
    assert await ledger.get_balance(kp.pubkey()) == 3 * SOL
    (status,) = await ledger.get_signature_statuses([sig])
    assert status is not None
    assert status.ok
    assert status.confirmation_status in ("confirmed", "finalized")
    chain.embedded.sync()  # on stable storage: finalized
    (status,) = await ledger.get_signature_statuses([sig])
    assert status is not None
    assert status.confirmation_status == "finalized"
    record = await ledger.get_transaction(sig)
    assert record is not None
    assert record.signature == sig
    assert record.err is None
    assert record.fee == 5000
    assert record.transaction.signatures[0] == sig
    assert await ledger.get_transaction(Signature.new_unique()) is None
    assert await ledger.get_signature_statuses([Signature.new_unique()]) == [None]


async def test_mint_and_token_balances(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer = await funded(ledger)
    authority = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey(), decimals=3)
    owner = Keypair().pubkey()
    ata = await mint_to_owner(ledger, payer, authority, mint, owner, 12_345)
    balance = await ledger.get_token_account_balance(ata)
    assert balance is not None
    assert (balance.amount, balance.decimals) == (12_345, 3)
    assert await ledger.get_token_account_balance(Keypair().pubkey()) is None
    mint_acc, ata_acc, missing = await ledger.get_multiple_accounts([mint, ata, Keypair().pubkey()])
    assert missing is None
    assert mint_acc is not None
    assert ata_acc is not None
    info = parse_mint(mint_acc)
    assert info is not None
    assert (info.supply, info.decimals, info.mint_authority) == (12_345, 3, authority.pubkey())
    tok = parse_token_account(ata_acc)
    assert tok is not None
    assert (tok.mint, tok.owner, tok.amount) == (mint, owner, 12_345)
    rent = await ledger.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE)
    assert rent == ata_acc.lamports
    many = await ledger.get_multiple_accounts([ata] * 150)  # batched past the 100-key RPC limit
    assert len(many) == 150
    assert all(a is not None and a.data == ata_acc.data for a in many)


async def _transfer_tx(ledger: Ledger, chain: LedgerEnv, amount: int) -> tuple[Keypair, Keypair, object, object]:
    payer = await funded(ledger)
    authority = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    alice = Keypair()
    src = await mint_to_owner(ledger, payer, authority, mint, alice.pubkey(), 1_000)
    dst = await mint_to_owner(ledger, payer, authority, mint, Keypair().pubkey(), 0)
    return payer, alice, (mint, src, dst), amount


async def test_failed_transaction_lands_with_error_and_fee(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer, alice, (mint, src, dst), _ = await _transfer_tx(ledger, chain, 0)
    latest = await ledger.get_latest_blockhash()
    too_much = [transfer_checked(src, mint, dst, alice.pubkey(), amount=5_000, decimals=3)]
    tx = build_transaction(payer, too_much, latest.blockhash, [alice])
    with pytest.raises(TransactionFailedError) as info:
        await ledger.send_transaction(tx, skip_preflight=False)
    assert info.value.err == {"InstructionError": [0, {"Custom": 1}]}  # insufficient funds
    assert await ledger.get_signature_statuses([tx.signatures[0]]) == [None]  # preflight: nothing landed
    before = await ledger.get_balance(payer.pubkey())
    sig = await ledger.send_transaction(tx, skip_preflight=True)
    (status,) = await wait_for_statuses(ledger, [sig], last_valid_block_height=latest.last_valid_block_height)
    assert status is not None
    assert status.err == {"InstructionError": [0, {"Custom": 1}]}
    assert await ledger.get_balance(payer.pubkey()) == before - 10_000  # two signatures' fees
    src_bal = await ledger.get_token_account_balance(src)
    assert src_bal is not None
    assert src_bal.amount == 1_000


async def test_duplicate_send_applies_once(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer, alice, (mint, src, dst), _ = await _transfer_tx(ledger, chain, 0)
    latest = await ledger.get_latest_blockhash()
    tx = build_transaction(payer, [transfer_checked(src, mint, dst, alice.pubkey(), amount=300, decimals=3)],
                           latest.blockhash, [alice])
    sig1 = await ledger.send_transaction(tx)
    sig2 = await ledger.send_transaction(tx)
    assert sig1 == sig2
    dst_bal = await ledger.get_token_account_balance(dst)
    assert dst_bal is not None
    assert dst_bal.amount == 300
    with pytest.raises(AlreadyProcessedError):
        await ledger.send_transaction(tx, skip_preflight=False)
    # The transaction flow does not take the duplicate's refusal for "never executed" (it landed): still open, and
    # its status says confirmed.
    sent = await cosign.send(ledger, tx)
    assert (sent.verdict, sent.refused) == (cosign.Verdict.OPEN, True)
    outcome = await cosign.await_outcome(ledger, sig1, latest.last_valid_block_height, levels=cosign.LANDED)
    assert outcome.verdict is cosign.Verdict.CONFIRMED


async def test_expired_and_unknown_blockhash_rejected(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer = await funded(ledger)
    latest = await ledger.get_latest_blockhash()
    chain.embedded.advance_slots(MAX_PROCESSING_AGE)
    # Still valid at exactly last_valid_block_height.
    assert await ledger.get_block_height() == latest.last_valid_block_height
    ok = build_transaction(payer, [memo("still valid")], latest.blockhash)
    await ledger.send_transaction(ok)
    chain.embedded.advance_slots(1)
    late = build_transaction(payer, [memo("too late")], latest.blockhash)
    with pytest.raises(BlockhashNotFoundError):
        await ledger.send_transaction(late, skip_preflight=False)
    with pytest.raises(BlockhashNotFoundError):
        await ledger.send_transaction(build_transaction(payer, [memo("x")], Hash.new_unique()))
    assert await ledger.get_signature_statuses([late.signatures[0]]) == [None]


async def test_oversize_rejected_by_builder_and_ledger(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer = await funded(ledger)
    latest = await ledger.get_latest_blockhash()
    big = [memo("x" * 1200)]
    with pytest.raises(TransactionTooLargeError):
        build_transaction(payer, big, latest.blockhash)
    tx = sign(compile_message(payer.pubkey(), big, latest.blockhash), [payer])
    assert len(bytes(tx)) > 1232
    with pytest.raises(TransactionRejectedError):
        await ledger.send_transaction(tx)


async def test_bad_signature_rejected_without_fee(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer = await funded(ledger)
    latest = await ledger.get_latest_blockhash()
    tx = build_transaction(payer, [memo("hello")], latest.blockhash)
    forged = VersionedTransaction.populate(tx.message, [Signature.new_unique()])
    before = await ledger.get_balance(payer.pubkey())
    with pytest.raises(TransactionRejectedError):
        await ledger.send_transaction(forged)
    assert await ledger.get_balance(payer.pubkey()) == before


async def test_mint_many_in_one_transaction(chain: LedgerEnv) -> None:
    ledger = chain.ledger
    payer = await funded(ledger)
    authority = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    owners = [Keypair().pubkey() for _ in range(5)]
    atas = [await mint_to_owner(ledger, payer, authority, mint, o, 1) for o in owners]
    latest = await ledger.get_latest_blockhash()
    ixs = [mint_to_checked(mint, a, authority.pubkey(), amount=i + 10, decimals=3) for i, a in enumerate(atas)]
    tx = build_transaction(payer, [*ixs, memo("windows 1..5")], latest.blockhash, [authority])
    sig = await ledger.send_transaction(tx)
    (status,) = await ledger.get_signature_statuses([sig])
    assert status is not None
    assert status.ok
    for i, a in enumerate(atas):
        bal = await ledger.get_token_account_balance(a)
        assert bal is not None
        assert bal.amount == 1 + i + 10
    assert atas[0] == associated_token_address(owners[0], mint)


async def test_escrow_account_with_seed_and_transaction_request(chain: LedgerEnv) -> None:
    """docs/decisions/0008-escrow-uniform-price-auction.md building blocks: a token account at a create_with_seed
    address owned by the escrow authority, funded by a user-signed transfer whose fee the platform pays (partial
    signing, then the wallet's signature)."""
    ledger = chain.ledger
    platform = await funded(ledger)
    escrow_authority = Keypair()
    authority = Keypair()
    mint = await new_mint(ledger, platform, authority.pubkey())
    user = Keypair()  # holds no SOL at all
    user_ata = await mint_to_owner(ledger, platform, authority, mint, user.pubkey(), 5_000)
    rent = await ledger.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE)
    seed = "escrow:energy:0123456789abcdef"
    escrow = seeded_address(escrow_authority.pubkey(), seed)
    await send_and_confirm(ledger, platform, create_token_account_with_seed(
        platform.pubkey(), escrow_authority.pubkey(), seed, mint=mint, owner=escrow_authority.pubkey(),
        lamports=rent), [escrow_authority])
    acc = await ledger.get_account(escrow)
    assert acc is not None
    tok = parse_token_account(acc)
    assert tok is not None
    assert (tok.owner, tok.mint, tok.amount) == (escrow_authority.pubkey(), mint, 0)

    latest = await ledger.get_latest_blockhash()
    message = compile_message(platform.pubkey(), [
        transfer_checked(user_ata, mint, escrow, user.pubkey(), amount=1_500, decimals=3)], latest.blockhash)
    request = cosign.unsigned(message)  # what the API hands the wallet
    forged = VersionedTransaction.populate(message, [Signature.default(), Signature.new_unique()])
    with pytest.raises(cosign.TransactionRequestError, match="does not verify"):
        cosign.cosign(forged, [platform])
    signed = cosign.wallet_sign(request, [user])  # the wallet signs the exact message
    complete = cosign.cosign(signed, [platform])  # the platform co-signs
    sig = await ledger.send_transaction(complete, skip_preflight=False)
    (status,) = await wait_for_statuses(ledger, [sig], last_valid_block_height=latest.last_valid_block_height)
    assert status is not None
    assert status.ok
    bal = await ledger.get_token_account_balance(escrow)
    assert bal is not None
    assert bal.amount == 1_500
    assert await ledger.get_balance(user.pubkey()) == 0  # the platform paid the fee
