"""The embedded ledger's JSON-RPC answers in a real node's shapes: raw requests, parsed with solders' own response
types (what solana-py and wallets use), including getTransaction in json encoding with token balances."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
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
from central.ledger.history import token_accounts_by_owner
from central.ledger.jsonrpc import FAUCET_RESERVE, METHODS, U64_MAX, JsonRpcServer, RpcLimits, jsonrpc_app, serve
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
    server: JsonRpcServer = await serve(ledger, "127.0.0.1", 0, limits=RpcLimits(airdrop=True))
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

    # The block holding it, in each level of detail, its time, and the fees paid in the recent blocks that hold it.
    v0 = {"maxSupportedTransactionVersion": 0}
    full = json.loads(await client.raw("getBlock", parsed.value.slot, v0))["result"]
    in_block = [t["transaction"]["signatures"][0] for t in full["transactions"]]
    assert str(sent.value) in in_block
    assert next(t for t in full["transactions"] if t["transaction"]["signatures"][0] == str(sent.value)) == {
        k: v for k, v in body.items() if k not in ("slot", "blockTime")}
    accounts = json.loads(await client.raw("getBlock", parsed.value.slot, {**v0, "transactionDetails": "accounts"}))
    assert [t["transaction"]["signatures"][0] for t in accounts["result"]["transactions"]] == in_block
    mine = accounts["result"]["transactions"][in_block.index(str(sent.value))]
    assert {a["pubkey"] for a in mine["transaction"]["accountKeys"]} >= {str(src), str(dst)}
    signatures = json.loads(await client.raw("getBlock", parsed.value.slot, {**v0, "transactionDetails": "signatures"}))
    assert signatures["result"]["signatures"] == in_block
    assert json.loads(await client.raw("getBlockTime", parsed.value.slot))["result"] == full["blockTime"]
    fees = json.loads(await client.raw("getRecentPrioritizationFees", [str(src), str(dst)]))["result"]
    assert {"slot": parsed.value.slot, "prioritizationFee": 0} in fees
    assert json.loads(await client.raw("getRecentPrioritizationFees", [str(Keypair().pubkey())]))["result"] == []


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
        assert token_accounts_by_owner(again, alice.pubkey()) == [(src, again.account(src))]
    finally:
        await again.close()


async def test_port_in_use_is_a_clear_error(rpc: tuple[Rpc, EmbeddedLedger]) -> None:
    client, ledger = rpc
    port = int(client.url.rsplit(":", 1)[1])
    with pytest.raises(LedgerError, match="rpc_port"):
        await serve(ledger, "127.0.0.1", port)


# --- issue 10, D6 and D12: a bounded development endpoint that answers every input in JSON-RPC form -----------------

ROOT = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def rpc_client(ledger: EmbeddedLedger, limits: RpcLimits | None = None) -> AsyncIterator[TestClient[Any, Any]]:
    client: TestClient[Any, Any] = TestClient(TestServer(jsonrpc_app(ledger, limits)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def call(client: TestClient[Any, Any], method: str, *params: Any) -> dict[str, Any]:
    resp = await client.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_airdrop_is_off_by_default_and_capped_in_development_mode() -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(slot_ms=0))
    alice, bob, carol = (str(Keypair().pubkey()) for _ in range(3))
    faucet = ledger.faucet_lamports
    async with rpc_client(ledger) as client:  # production default: no airdrops at all
        err = (await call(client, "requestAirdrop", alice, 10**9))["error"]
        assert err["code"] == -32600
        assert "disabled" in err["message"]
    assert ledger.faucet_lamports == faucet
    limits = RpcLimits(airdrop=True, airdrop_max_lamports=10**9, airdrop_lamports_per_address=15 * 10**8,
                       airdrops_per_window=3)
    async with rpc_client(ledger, limits) as client:
        assert "per airdrop" in (await call(client, "requestAirdrop", alice, 10**9 + 1))["error"]["message"]
        assert "result" in await call(client, "requestAirdrop", alice, 10**9)
        assert "per address" in (await call(client, "requestAirdrop", alice, 6 * 10**8))["error"]["message"]
        assert "result" in await call(client, "requestAirdrop", alice, 5 * 10**8)
        assert "rent" in (await call(client, "requestAirdrop", bob, 1))["error"]["message"]
        assert "result" in await call(client, "requestAirdrop", bob, 10**6)
        assert "airdrops per" in (await call(client, "requestAirdrop", carol, 10**6))["error"]["message"]
    assert ledger.faucet_lamports == faucet - 15 * 10**8 - 10**6 - 3 * 5000  # three fees
    # Whatever the caps, the faucet keeps the reserve central's own fee-payer top-ups draw from.
    async with rpc_client(ledger, RpcLimits(airdrop=True, airdrop_max_lamports=U64_MAX,
                                            airdrop_lamports_per_address=U64_MAX)) as client:
        err = (await call(client, "requestAirdrop", carol, ledger.faucet_lamports - FAUCET_RESERVE + 1))["error"]
        assert "reserved" in err["message"]
    assert ledger.faucet_lamports - FAUCET_RESERVE > 0
    await ledger.close()


async def test_batches_and_bodies_are_capped() -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(slot_ms=0))
    limits = RpcLimits(airdrop=True, max_batch=10, max_body_bytes=64 * 1024)
    airdrop = {"jsonrpc": "2.0", "id": 1, "method": "requestAirdrop", "params": [str(Keypair().pubkey()), 10**6]}
    async with rpc_client(ledger, limits) as client:
        resp = await client.post("/", json=[airdrop] * 11)  # the probe's 1 MB batch had 7,812
        assert resp.status == 200
        assert (await resp.json())["error"]["code"] == -32600
        assert ledger.transaction_count == 0, "nothing of a refused batch runs"
        resp = await client.post("/", json=[airdrop] * 10)
        assert [("result" in r) for r in await resp.json()] == [True] * 10
        resp = await client.post("/", data=b"[" + b" " * (64 * 1024) + b"]")
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == -32600
    await ledger.close()


def test_compose_keeps_json_rpc_private() -> None:
    """The compose file publishes only the API (and MQTT); central serves JSON-RPC on loopback inside its container."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "8899" not in compose
    with (ROOT / "firmware-config" / "central.compose.toml").open("rb") as f:
        ledger_cfg = tomllib.load(f)["ledger"]
    assert ledger_cfg.get("rpc_host", "127.0.0.1") == "127.0.0.1"
    assert not ledger_cfg.get("rpc_airdrop", False)


async def test_out_of_range_parameters_are_invalid_params() -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(slot_ms=0))
    alice = str(Keypair().pubkey())
    async with rpc_client(ledger, RpcLimits(airdrop=True)) as client:
        for size in (2**70, 2**64, -1, True, 1.5, "10"):
            assert (await call(client, "getMinimumBalanceForRentExemption", size))["error"]["code"] == -32602, size
        assert (await call(client, "getMinimumBalanceForRentExemption", U64_MAX))["result"] > 0
        for lamports in (2**64, 0, -5, False, 1e9):
            assert (await call(client, "requestAirdrop", alice, lamports))["error"]["code"] == -32602, lamports
        resp = await client.post("/", json={"jsonrpc": "2.0", "id": [1], "method": "getSlot"})
        assert (resp.status, (await resp.json())["error"]["code"]) == (200, -32600)
        resp = await client.post("/", data=b'{"jsonrpc":"2.0","id":1,"method":"getSlot","params":[NaN]}')
        assert (resp.status, (await resp.json())["error"]["code"]) == (200, -32700)
    await ledger.close()


_KEYS = [str(Keypair().pubkey()) for _ in range(2)]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([*_KEYS, "base64", "base58", "jsonParsed", "json", str(Signature.default()),
                       "11111111111111111111111111111111", "AA==", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["encoding", "mint", "programId", "sigVerify", "replaceRecentBlockhash", "skipPreflight",
                         "maxSupportedTransactionVersion", "commitment"]) | st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.slow  # 150 examples, each a JSON-RPC round trip
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.tuples(st.sampled_from(sorted(METHODS)), st.lists(_JSON, max_size=4) | _JSON),
                         min_size=1, max_size=4))
async def test_any_parameters_get_a_json_rpc_answer_never_http_500(requests: list[tuple[str, Any]]) -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(slot_ms=0))
    try:
        async with rpc_client(ledger, RpcLimits(airdrop=True)) as client:
            batch = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(requests)]
            resp = await client.post("/", json=batch)
            assert resp.status == 200
            answers = await resp.json()
            assert [a["id"] for a in answers] == list(range(len(requests)))
            for a in answers:
                assert ("result" in a) != ("error" in a), a
                if "error" in a:
                    # -32004 block not available, -32007 slot skipped, -32008 no snapshot, -32016 minContextSlot: node
                    # answers about the ledger's state, not failures
                    assert a["error"]["code"] in (-32600, -32601, -32602, -32002, -32003, -32004, -32007, -32008,
                                                  -32015, -32016), a
    finally:
        await ledger.close()


async def test_blockhash_of_wrong_length_is_invalid_params_not_internal_error() -> None:
    # Found by the property test above: solders' ParseHashError is not a ValueError.
    ledger = EmbeddedLedger(EmbeddedConfig(slot_ms=0))
    try:
        async with rpc_client(ledger, RpcLimits()) as client:
            for bad in ("", "abc", "1" * 60):
                resp = await client.post("/", json={"jsonrpc": "2.0", "id": 1, "method": "isBlockhashValid",
                                                    "params": [bad]})
                answer = await resp.json()
                assert answer["error"]["code"] == -32602, answer
    finally:
        await ledger.close()
