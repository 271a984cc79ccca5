"""The embedded ledger's JSON-RPC answers in a real node's shapes: raw requests, parsed with solders' own response
types (what solana-py and wallets use), including getTransaction in json encoding with token balances."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBalanceResp,
    GetBlockHeightResp,
    GetEpochInfoResp,
    GetFeeForMessageResp,
    GetGenesisHashResp,
    GetHealthResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetMultipleAccountsResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTokenAccountBalanceResp,
    GetTokenAccountsByOwnerJsonParsedResp,
    GetTokenAccountsByOwnerResp,
    GetTransactionResp,
    GetVersionResp,
    IsBlockhashValidResp,
    RequestAirdropResp,
    SendTransactionResp,
    SimulateTransactionResp,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger.builder import build_transaction, compile_message, transfer_checked
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.errors import LedgerError
from central.ledger.jsonrpc import JsonRpcServer, serve
from central.ledger.tokens import TOKEN_PROGRAM_ID
from central.ledger.transaction_json import b58decode, b58encode

from .helpers import funded, mint_to_owner, new_mint


class Rpc:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def raw(self, method: str, *params: Any) -> str:
        async with self.session.post(self.url, json={"jsonrpc": "2.0", "id": 7, "method": method,
                                                     "params": list(params)}) as r:
            assert r.status == 200
            return await r.text()


@pytest.fixture
async def rpc(tmp_path: Path) -> AsyncIterator[tuple[Rpc, EmbeddedLedger]]:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "l", slot_ms=0))
    server: JsonRpcServer = await serve(ledger, "127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield Rpc(server.url, session), ledger
    await server.close()
    await ledger.close()


async def test_node_shapes(rpc: tuple[Rpc, EmbeddedLedger]) -> None:
    client, ledger = rpc
    assert json.loads(await client.raw("getHealth"))["result"] == "ok"
    assert isinstance(GetHealthResp.from_json(await client.raw("getHealth")), GetHealthResp)
    assert GetVersionResp.from_json(await client.raw("getVersion")).value.solana_core
    slot = GetSlotResp.from_json(await client.raw("getSlot")).value
    assert GetBlockHeightResp.from_json(await client.raw("getBlockHeight")).value == slot
    latest = GetLatestBlockhashResp.from_json(await client.raw("getLatestBlockhash", {"commitment": "finalized"}))
    assert latest.value.last_valid_block_height == slot + 150
    assert latest.context.slot == slot
    rent = GetMinimumBalanceForRentExemptionResp.from_json(await client.raw("getMinimumBalanceForRentExemption", 165))
    assert rent.value == ledger.rent_exempt_minimum(165)

    payer = await funded(ledger)
    authority = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    alice = Keypair()
    src = await mint_to_owner(ledger, payer, authority, mint, alice.pubkey(), 2_500)
    dst = await mint_to_owner(ledger, payer, authority, mint, Keypair().pubkey(), 0)

    acc = GetAccountInfoResp.from_json(await client.raw("getAccountInfo", str(src), {"encoding": "base64"}))
    assert acc.value is not None
    assert acc.value.data == ledger.account(src).data  # type: ignore[union-attr]
    assert GetAccountInfoResp.from_json(await client.raw("getAccountInfo", str(Keypair().pubkey()))).value is None
    many = GetMultipleAccountsResp.from_json(await client.raw("getMultipleAccounts", [str(src), str(mint)],
                                                              {"encoding": "base64"}))
    assert [a is not None for a in many.value] == [True, True]
    bal = GetTokenAccountBalanceResp.from_json(await client.raw("getTokenAccountBalance", str(src)))
    assert (bal.value.amount, bal.value.decimals, bal.value.ui_amount_string) == ("2500", 3, "2.5")
    assert GetBalanceResp.from_json(await client.raw("getBalance", str(payer.pubkey()))).value > 0

    airdrop = RequestAirdropResp.from_json(await client.raw("requestAirdrop", str(alice.pubkey()), 10**9))
    assert ledger.status(airdrop.value) is not None

    tx = build_transaction(payer, [transfer_checked(src, mint, dst, alice.pubkey(), amount=700, decimals=3)],
                           ledger.latest_blockhash().blockhash, [alice])
    sent = SendTransactionResp.from_json(await client.raw("sendTransaction", base64.b64encode(bytes(tx)).decode(),
                                                          {"encoding": "base64", "skipPreflight": False}))
    assert sent.value == tx.signatures[0]
    statuses = GetSignatureStatusesResp.from_json(await client.raw("getSignatureStatuses", [str(sent.value)],
                                                                   {"searchTransactionHistory": True}))
    st = statuses.value[0]
    assert st is not None
    assert st.err is None

    raw = await client.raw("getTransaction", str(sent.value),
                           {"encoding": "json", "maxSupportedTransactionVersion": 0})
    parsed = GetTransactionResp.from_json(raw)
    assert parsed.value is not None
    assert parsed.value.slot == ledger.slot
    body = json.loads(raw)["result"]
    assert body["version"] == 0
    assert body["meta"]["err"] is None
    assert body["transaction"]["signatures"] == [str(tx.signatures[0]), str(tx.signatures[1])]
    pre = {b["accountIndex"]: b["uiTokenAmount"]["amount"] for b in body["meta"]["preTokenBalances"]}
    post = {b["accountIndex"]: b["uiTokenAmount"]["amount"] for b in body["meta"]["postTokenBalances"]}
    keys = body["transaction"]["message"]["accountKeys"]
    assert pre[keys.index(str(src))] == "2500"
    assert post[keys.index(str(src))] == "1800"
    assert post[keys.index(str(dst))] == "700"
    assert len(body["meta"]["preBalances"]) == len(keys)
    # Version 0 without maxSupportedTransactionVersion is refused as a node does.
    refused = json.loads(await client.raw("getTransaction", str(sent.value), {"encoding": "json"}))
    assert refused["error"]["code"] == -32015


async def test_errors_in_node_form(rpc: tuple[Rpc, EmbeddedLedger]) -> None:
    client, ledger = rpc
    bad = json.loads(await client.raw("getAccountInfo", "not-a-key"))
    assert bad["error"]["code"] == -32602
    missing = json.loads(await client.raw("getTokenAccountBalance", str(Keypair().pubkey())))
    assert missing["error"]["code"] == -32602
    unknown = json.loads(await client.raw("getBlockProduction"))
    assert unknown["error"]["code"] == -32601
    garbage = json.loads(await client.raw("sendTransaction", "!!!", {"encoding": "base64"}))
    assert garbage["error"]["code"] == -32602
    async with client.session.post(client.url, data=b"{nope") as r:
        assert (await r.json())["error"]["code"] == -32700
    async with client.session.post(client.url, data=b"[" * 100_000 + b"]" * 100_000) as r:
        assert (await r.json())["error"]["code"] == -32700
    payer = await funded(ledger)
    unsigned = build_transaction(payer, [], ledger.latest_blockhash().blockhash)
    forged = base64.b64encode(bytes(unsigned)[:1] + bytes(64) + bytes(unsigned)[65:]).decode()
    rejected = json.loads(await client.raw("sendTransaction", forged, {"encoding": "base64"}))
    assert rejected["error"]["code"] == -32003


@given(st.binary(max_size=80))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_base58_matches_solders() -> None:
    key = Keypair().pubkey()
    assert b58encode(bytes(key)) == str(key)


async def test_wallet_methods(rpc: tuple[Rpc, EmbeddedLedger]) -> None:
    """What wallets ask before signing: simulate an unsigned transaction, its fee, token accounts by owner."""
    client, ledger = rpc
    payer = await funded(ledger)
    authority = Keypair()
    mint = await new_mint(ledger, payer, authority.pubkey())
    alice = Keypair()
    src = await mint_to_owner(ledger, payer, authority, mint, alice.pubkey(), 4_200)
    dst = await mint_to_owner(ledger, payer, authority, mint, Keypair().pubkey(), 0)

    message = compile_message(payer.pubkey(), [transfer_checked(src, mint, dst, alice.pubkey(), amount=100,
                                                                decimals=3)], ledger.latest_blockhash().blockhash)
    unsigned = VersionedTransaction.populate(message, [Signature.default(), Signature.default()])
    sim = SimulateTransactionResp.from_json(await client.raw(
        "simulateTransaction", base64.b64encode(bytes(unsigned)).decode(),
        {"encoding": "base64", "sigVerify": False, "replaceRecentBlockhash": True}))
    assert sim.value.err is None
    assert (sim.value.units_consumed or 0) > 0
    assert sim.value.replacement_blockhash is not None
    dst_bal = await ledger.get_token_account_balance(dst)
    assert dst_bal is not None
    assert dst_bal.amount == 0  # simulated, not landed
    too_much = compile_message(payer.pubkey(), [transfer_checked(src, mint, dst, alice.pubkey(), amount=10**6,
                                                                 decimals=3)], ledger.latest_blockhash().blockhash)
    failing = VersionedTransaction.populate(too_much, [Signature.default(), Signature.default()])
    sim = SimulateTransactionResp.from_json(await client.raw(
        "simulateTransaction", base64.b64encode(bytes(failing)).decode(), {"encoding": "base64"}))
    assert sim.value.err is not None
    checked = json.loads(await client.raw("simulateTransaction", base64.b64encode(bytes(failing)).decode(),
                                          {"encoding": "base64", "sigVerify": True}))
    assert checked["result"]["value"]["err"] == "SignatureFailure"

    fee = GetFeeForMessageResp.from_json(await client.raw(
        "getFeeForMessage", base64.b64encode(to_bytes_versioned(message)).decode()))
    assert fee.value == 10_000

    valid = IsBlockhashValidResp.from_json(await client.raw("isBlockhashValid", str(message.recent_blockhash)))
    assert valid.value is True
    ledger.advance_slots(151)
    assert IsBlockhashValidResp.from_json(await client.raw("isBlockhashValid",
                                                           str(message.recent_blockhash))).value is False

    owned = GetTokenAccountsByOwnerResp.from_json(await client.raw(
        "getTokenAccountsByOwner", str(alice.pubkey()), {"mint": str(mint)}, {"encoding": "base64"}))
    assert [a.pubkey for a in owned.value] == [src]
    parsed = GetTokenAccountsByOwnerJsonParsedResp.from_json(await client.raw(
        "getTokenAccountsByOwner", str(alice.pubkey()), {"programId": str(TOKEN_PROGRAM_ID)},
        {"encoding": "jsonParsed"}))
    info = parsed.value[0].account.data.parsed["info"]
    assert (info["mint"], info["tokenAmount"]["amount"]) == (str(mint), "4200")
    assert json.loads(await client.raw("getTokenAccountsByOwner", str(alice.pubkey()),
                                       {"mint": str(Keypair().pubkey())}))["result"]["value"] == []

    genesis = GetGenesisHashResp.from_json(await client.raw("getGenesisHash")).value
    epoch = GetEpochInfoResp.from_json(await client.raw("getEpochInfo")).value
    assert epoch.absolute_slot == ledger.slot
    assert epoch.transaction_count == ledger.transaction_count
    await ledger.close()
    again = EmbeddedLedger(EmbeddedConfig(data_dir=ledger.config.data_dir, slot_ms=0))
    try:
        assert again.genesis_hash == genesis  # survives restarts
        assert again.token_accounts_by_owner(alice.pubkey()) == [(src, again.account(src))]
    finally:
        await again.close()


async def test_port_in_use_is_a_clear_error(rpc: tuple[Rpc, EmbeddedLedger]) -> None:
    client, ledger = rpc
    port = int(client.url.rsplit(":", 1)[1])
    with pytest.raises(LedgerError, match="rpc_port"):
        await serve(ledger, "127.0.0.1", port)
