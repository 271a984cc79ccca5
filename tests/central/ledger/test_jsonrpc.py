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
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBalanceResp,
    GetBlockHeightResp,
    GetHealthResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetMultipleAccountsResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTokenAccountBalanceResp,
    GetTransactionResp,
    GetVersionResp,
    RequestAirdropResp,
    SendTransactionResp,
)

from central.ledger.builder import build_transaction, transfer_checked
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import JsonRpcServer, serve
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
