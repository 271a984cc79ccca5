"""The embedded ledger survives restarts: balances, history, statuses and block height come back from disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from solders.keypair import Keypair

from central.ledger.builder import build_transaction, memo, transfer_checked
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.errors import KeyFileError, LedgerStoreError
from central.ledger.keys import PlatformKey, load_key, load_or_create_key, write_key

from .helpers import funded, mint_to_owner, new_mint


async def test_restart_keeps_balances_history_and_blockhashes(tmp_path: Path) -> None:
    cfg = EmbeddedConfig(data_dir=tmp_path / "ledger", slot_ms=0)
    ledger = EmbeddedLedger(cfg)
    payer = await funded(ledger)
    authority = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    alice = Keypair()
    src = await mint_to_owner(ledger, payer, authority, mint, alice.pubkey(), 5_000)
    dst = await mint_to_owner(ledger, payer, authority, mint, Keypair().pubkey(), 0)
    ledger.advance_slots(7)
    latest = await ledger.get_latest_blockhash()
    tx = build_transaction(payer, [transfer_checked(src, mint, dst, alice.pubkey(), amount=1_234, decimals=3)],
                           latest.blockhash, [alice])
    sig = await ledger.send_transaction(tx)
    height = await ledger.get_block_height()
    payer_lamports = await ledger.get_balance(payer.pubkey())
    await ledger.close()

    again = EmbeddedLedger(cfg)
    try:
        assert await again.get_block_height() == height
        assert (await again.get_latest_blockhash()).blockhash == latest.blockhash
        assert await again.get_balance(payer.pubkey()) == payer_lamports
        src_bal = await again.get_token_account_balance(src)
        dst_bal = await again.get_token_account_balance(dst)
        assert src_bal is not None
        assert dst_bal is not None
        assert (src_bal.amount, dst_bal.amount) == (5_000 - 1_234, 1_234)
        (status,) = await again.get_signature_statuses([sig])
        assert status is not None
        assert status.ok
        record = await again.get_transaction(sig)
        assert record is not None
        assert record.transaction == tx
        # The same transaction sent again after the restart is recognised, not applied twice.
        assert await again.send_transaction(tx) == sig
        dst_bal = await again.get_token_account_balance(dst)
        assert dst_bal is not None
        assert dst_bal.amount == 1_234
        # A blockhash handed out before the restart is still usable within its validity.
        later = build_transaction(payer, [memo("after restart")], latest.blockhash)
        await again.send_transaction(later, skip_preflight=False)
        # The history JSON-RPC serves (landing order, blocks) survived the restart; compaction keeps everything.
        order, blocks = list(again.order), dict(again.blocks)
        assert order[-2:] == [sig, later.signatures[0]]
        assert blocks[record.slot][1] == record.block_time
        again.compact()
        assert (await again.get_transaction(sig)) == record
    finally:
        await again.close()
    third = EmbeddedLedger(cfg)
    try:
        assert (third.order, third.blocks) == (order, blocks)
        dst_bal = await third.get_token_account_balance(dst)
        assert dst_bal is not None
        assert dst_bal.amount == 1_234
        assert await third.get_transaction(sig) == record
        assert await third.get_block_height() == height
    finally:
        await third.close()


async def test_a_ledger_directory_has_one_owner(tmp_path: Path) -> None:
    cfg = EmbeddedConfig(data_dir=tmp_path / "ledger", slot_ms=0)
    first = EmbeddedLedger(cfg)
    try:
        with pytest.raises(LedgerStoreError, match="in use by another process"):
            EmbeddedLedger(cfg)
    finally:
        await first.close()
    second = EmbeddedLedger(cfg)  # released on close
    await second.close()


async def test_torn_tail_is_truncated_and_the_rest_kept(tmp_path: Path) -> None:
    cfg = EmbeddedConfig(data_dir=tmp_path / "ledger", slot_ms=0, fsync_interval=0)
    ledger = EmbeddedLedger(cfg)
    kp = await funded(ledger, 7 * 10**9)
    await ledger.close()
    log = tmp_path / "ledger" / "ledger.log"
    size = log.stat().st_size
    with log.open("ab") as f:
        f.write(b"\x50\x00\x00\x00garbage")  # a frame header promising more than was written
    again = EmbeddedLedger(cfg)
    try:
        assert await again.get_balance(kp.pubkey()) == 7 * 10**9
        assert log.stat().st_size == size
        await funded(again, 3 * 10**9)  # appends cleanly after the truncation
    finally:
        await again.close()


async def test_in_memory_ledger_needs_no_directory() -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=None, slot_ms=0))
    kp = await funded(ledger, 10**9)
    sig = await ledger.request_airdrop(kp.pubkey(), 10**9)
    assert await ledger.request_airdrop(kp.pubkey(), 1) != sig
    assert await ledger.get_balance(kp.pubkey()) == 2 * 10**9 + 1
    assert await ledger.get_transaction(sig) is not None
    await ledger.close()


def test_platform_key_never_prints_its_secret(tmp_path: Path) -> None:
    key = PlatformKey.generate("mint_authority")
    secret_b58 = str(key.signer)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert secret_b58 not in text
        assert str(key.pubkey) in text
    path = tmp_path / "keys" / "mint.json"
    write_key(key, path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_key("mint_authority", path) == key
    with pytest.raises(KeyFileError):
        write_key(key, path)  # never clobbers
    loaded, created = load_or_create_key("mint_authority", path, create=True)
    assert (loaded, created) == (key, False)


def test_key_file_errors_name_the_file_not_the_content(tmp_path: Path) -> None:
    path = tmp_path / "fee_payer.json"
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key("fee_payer", path)
    path.write_text('"supersecretvalue"')
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError) as info:
        load_key("fee_payer", path)
    assert "supersecretvalue" not in str(info.value)
    assert str(path) in str(info.value)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="group or others"):
        load_key("fee_payer", path)
