"""Solana's PubSub websocket for the embedded ledger: what @solana/web3.js's ``confirmTransaction`` and
``sendAndConfirmTransaction`` wait on (``signatureSubscribe``; without it they time out as "block height exceeded"
although the transaction landed), and what wallets watch (``accountSubscribe``, ``slotSubscribe``), with the
``*Unsubscribe`` methods. Same message shapes as a node's; served by ``central.ledger.jsonrpc`` on the JSON-RPC
port (a websocket upgrade of ``GET /``) and on ``ledger.rpc_ws_port`` (8900, where web3.js looks by default).

Notifications come from polling the ledger every ``POLL_S`` (the ledger lives in this process; a poll is a few
dictionary look-ups per subscription). Each connection holds at most ``MAX_SUBSCRIPTIONS``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger.embedded import EmbeddedLedger
from central.ledger.rpc_params import (
    RpcError,
    account_encoding,
    account_json,
    check_config,
    config,
    envelope,
    error_answer,
    invalid,
    load_json,
    param,
    pubkey,
    signature,
)

log = logging.getLogger(__name__)

POLL_S = 0.05
MAX_SUBSCRIPTIONS = 256
SYSTEM_PROGRAM = "11111111111111111111111111111111"


@dataclass
class _Subscription:
    kind: str  # "signature", "account", "slot"
    target: Signature | Pubkey | None
    cfg: dict[str, Any]
    last: object = None


@dataclass
class _Connection:
    ledger: EmbeddedLedger
    ws: web.WebSocketResponse
    subs: dict[int, _Subscription] = field(default_factory=dict)
    next_id: int = 0

    def subscribe(self, sub: _Subscription) -> int:
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            raise RpcError(-32600, f"Invalid request: at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        sub.last = self._current(sub)
        self.next_id += 1
        self.subs[self.next_id] = sub
        return self.next_id

    def _current(self, sub: _Subscription) -> object:
        if sub.kind == "slot":
            return self.ledger.slot
        if sub.kind == "account":
            assert isinstance(sub.target, Pubkey)
            found = account_json(self.ledger, self.ledger.account(sub.target), sub.cfg)
            if found is None:  # a node notifies a closed account as empty and owned by the system program
                empty: dict[str, object] = {"data": ["", "base64"], "executable": False, "lamports": 0,
                                            "owner": SYSTEM_PROGRAM, "rentEpoch": 0, "space": 0}
                if sub.cfg.get("encoding") == "base58":
                    empty["data"] = ["", "base58"]
                return empty
            return found
        assert isinstance(sub.target, Signature)
        status = self.ledger.status(sub.target)
        return None if status is None else {"err": status.err}

    def due(self) -> list[tuple[str, int, object]]:
        """The notifications due now: (method, subscription, result); a signature subscription ends with its one."""
        out: list[tuple[str, int, object]] = []
        for sid, sub in list(self.subs.items()):
            now = self._current(sub)
            if sub.kind == "signature":
                if now is not None:
                    out.append(("signatureNotification", sid, {"context": {"slot": self.ledger.slot}, "value": now}))
                    del self.subs[sid]
            elif now != sub.last:
                sub.last = now
                if sub.kind == "slot":
                    assert isinstance(now, int)
                    out.append(("slotNotification", sid, {"parent": max(now - 1, 0), "root": now, "slot": now}))
                else:
                    out.append(("accountNotification", sid, {"context": {"slot": self.ledger.slot}, "value": now}))
        return out

    def call(self, method: str, params: object) -> object:
        if not isinstance(params, list):
            raise invalid("Invalid params: expected an array")
        check_config(self.ledger, params)
        if method == "signatureSubscribe":
            return self.subscribe(_Subscription("signature", signature(param(params, 0)), config(params, 1)))
        if method == "accountSubscribe":
            cfg = config(params, 1)
            account_encoding(cfg)  # refuse an unsupported encoding now, not at the first notification
            return self.subscribe(_Subscription("account", pubkey(param(params, 0)), cfg))
        if method == "slotSubscribe":
            return self.subscribe(_Subscription("slot", None, {}))
        kind = UNSUBSCRIBE.get(method)
        if kind is None:
            raise RpcError(-32601, "Method not found")
        sid = param(params, 0)
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise invalid("Invalid params: expected a subscription id")
        sub = self.subs.get(sid)
        if sub is None or sub.kind != kind:
            raise invalid("Invalid subscription id.")
        del self.subs[sid]
        return True


UNSUBSCRIBE = {"signatureUnsubscribe": "signature", "accountUnsubscribe": "account", "slotUnsubscribe": "slot"}


def _answer(conn: _Connection, text: str) -> dict[str, object]:
    try:
        req = load_json(text)
    except (ValueError, RecursionError):
        return error_answer(-32700, "Parse error")
    parts = envelope(req)
    if parts is None:
        return error_answer(-32600, "Invalid request")
    rid, method, params = parts
    try:
        result = conn.call(method, params)
    except RpcError as e:
        return error_answer(e.code, e.message, rid)
    except Exception:  # no message may end the connection: logged, answered in JSON-RPC form
        log.exception("pubsub %s failed unexpectedly", method[:64])
        return error_answer(-32603, "Internal error", rid)
    return {"jsonrpc": "2.0", "result": result, "id": rid}


async def _notify(conn: _Connection) -> None:
    while not conn.ws.closed:
        for method, sid, result in conn.due():
            await conn.ws.send_json({"jsonrpc": "2.0", "method": method,
                                     "params": {"result": result, "subscription": sid}})
        await asyncio.sleep(POLL_S)


async def pubsub(ledger: EmbeddedLedger, request: web.Request, max_message_bytes: int) -> web.WebSocketResponse:
    """Serve one websocket connection until the client closes it."""
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=max_message_bytes)
    await ws.prepare(request)
    conn = _Connection(ledger, ws)
    notifier = asyncio.create_task(_notify(conn))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_json(_answer(conn, msg.data))
            elif msg.type == WSMsgType.BINARY:
                await ws.send_json(_answer(conn, msg.data.decode("utf-8", "replace")))
    finally:
        notifier.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await notifier
    return ws
