"""The embedded ledger's PubSub websocket (what web3.js's confirmTransaction waits on): node-shaped subscriptions,
notifications and errors, on the JSON-RPC port and on its own port (ledger.rpc_ws_port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from solders.keypair import Keypair
from solders.rpc.responses import (
    AccountNotification,
    SignatureNotification,
    SlotNotification,
    parse_websocket_message,
)

from central.ledger.builder import build_transaction, memo
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import JsonRpcServer, RpcLimits, serve
from tests.services import free_port

from .helpers import funded


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[JsonRpcServer, EmbeddedLedger]]:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "l", slot_ms=0))
    srv = await serve(ledger, "127.0.0.1", 0, limits=RpcLimits(airdrop=True))
    try:
        yield srv, ledger
    finally:
        await srv.close()
        await ledger.close()


def ws_url(srv: JsonRpcServer) -> str:
    return srv.url.replace("http", "ws", 1)  # the websocket shares the JSON-RPC port


async def ask(ws: aiohttp.ClientWebSocketResponse, method: str, *params: Any) -> dict[str, Any]:
    await ws.send_json({"jsonrpc": "2.0", "id": 9, "method": method, "params": list(params)})
    answer: dict[str, Any] = await ws.receive_json(timeout=30)
    return answer


async def notification(ws: aiohttp.ClientWebSocketResponse) -> object:
    """The next message, parsed as solana-py's websocket client parses it (solders)."""
    [note] = parse_websocket_message(await ws.receive_str(timeout=30))
    return note


async def test_signature_account_and_slot_subscriptions(server: tuple[JsonRpcServer, EmbeddedLedger]) -> None:
    srv, ledger = server
    payer = await funded(ledger)
    watched = Keypair().pubkey()
    tx = build_transaction(payer, [memo("watched")], ledger.latest_blockhash().blockhash)
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(srv)) as ws:
        sig_sub = (await ask(ws, "signatureSubscribe", str(tx.signatures[0]), {"commitment": "confirmed"}))["result"]
        acc_sub = (await ask(ws, "accountSubscribe", str(watched), {"encoding": "jsonParsed"}))["result"]
        assert len({sig_sub, acc_sub}) == 2
        ledger.send(tx)
        note = await notification(ws)
        assert isinstance(note, SignatureNotification)
        assert note.subscription == sig_sub
        assert note.result.value.err is None
        ledger.airdrop(watched, 10**9)
        acc_note = await notification(ws)
        assert isinstance(acc_note, AccountNotification)
        assert acc_note.subscription == acc_sub
        assert acc_note.result.value.lamports == 10**9
        # The signature subscription ended with its notification; the account one ends when asked.
        assert (await ask(ws, "signatureUnsubscribe", sig_sub))["error"]["code"] == -32602
        assert (await ask(ws, "accountUnsubscribe", acc_sub))["result"] is True
        slot_sub = (await ask(ws, "slotSubscribe"))["result"]
        ledger.advance_slots(1)
        slot_note = await notification(ws)
        assert isinstance(slot_note, SlotNotification)
        assert slot_note.subscription == slot_sub
        assert slot_note.result.slot == ledger.slot
        assert (await ask(ws, "slotUnsubscribe", slot_sub))["result"] is True


async def test_a_landed_signature_is_notified_at_once(server: tuple[JsonRpcServer, EmbeddedLedger]) -> None:
    srv, ledger = server
    payer = await funded(ledger)
    sig = ledger.send(build_transaction(payer, [memo("before")], ledger.latest_blockhash().blockhash))
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(srv)) as ws:
        sub = (await ask(ws, "signatureSubscribe", str(sig)))["result"]
        note = await notification(ws)
        assert isinstance(note, SignatureNotification)
        assert note.subscription == sub


async def test_malformed_messages_get_json_rpc_errors(server: tuple[JsonRpcServer, EmbeddedLedger]) -> None:
    srv, _ledger = server
    async with aiohttp.ClientSession() as session:
        async with session.get(srv.url) as plain:  # a GET without the upgrade
            assert plain.status == 405
            assert (await plain.json())["error"]["code"] == -32600
        async with session.ws_connect(ws_url(srv)) as ws:
            await ws.send_str("{")
            assert (await ws.receive_json(timeout=30))["error"]["code"] == -32700
            await ws.send_json([1, 2])
            assert (await ws.receive_json(timeout=30))["error"]["code"] == -32600
            assert (await ask(ws, "programSubscribe", "11111111111111111111111111111111"))["error"]["code"] == -32601
            assert (await ask(ws, "accountSubscribe", "not-a-key"))["error"]["code"] == -32602
            assert (await ask(ws, "accountSubscribe", str(Keypair().pubkey()), {"encoding": "xml"}))["error"][
                "code"] == -32602
            assert (await ask(ws, "signatureSubscribe", "abc"))["error"]["code"] == -32602
            assert (await ask(ws, "slotUnsubscribe", 12345))["error"]["code"] == -32602
            assert (await ask(ws, "slotSubscribe", {"commitment": "bogus"}))["error"]["code"] == -32602
            assert (await ask(ws, "getSlot"))["error"]["code"] == -32601
            assert isinstance((await ask(ws, "slotSubscribe"))["result"], int)  # the connection is still usable


async def test_the_websocket_is_also_on_its_own_port(tmp_path: Path) -> None:
    # web3.js derives its websocket from the HTTP endpoint: port + 1 (8899 -> 8900, ledger.rpc_ws_port).
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "l", slot_ms=0))
    port = free_port()
    srv = await serve(ledger, "127.0.0.1", 0, ws_port=port)
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{port}") as ws:
            assert isinstance((await ask(ws, "slotSubscribe"))["result"], int)
    finally:
        await srv.close()
        await ledger.close()
