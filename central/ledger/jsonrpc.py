"""Standard Solana JSON-RPC over HTTP for the embedded ledger (the subset the project uses), same JSON shapes as a
real node, so ``solana``-style clients, wallets and the rpc adapter can read and write it.

``jsonrpc_app(ledger, limits)`` returns an aiohttp ``Application`` (POST ``/``, single and batch requests);
``serve(ledger, host, port, limits=...)`` runs it and returns a ``JsonRpcServer`` handle with ``url`` and ``close()``.
``GET /`` with a websocket upgrade is the PubSub endpoint (``central.ledger.rpc_pubsub``), also served on ``ws_port``
when one is given and free (``ledger.rpc_ws_port``, 8900: where web3.js looks by default, ``rpc_port + 1``).

The endpoint is a development tool and shares central's event loop, so it is bounded (``RpcLimits``):
- ``requestAirdrop`` only in development mode (``RpcLimits.airdrop``, config ``ledger.rpc_airdrop``), capped per
  call, per address and per window, and never below the faucet's reserve (central's own fee-payer top-ups always
  find lamports); central's in-process airdrops do not go through here.
- request bodies above ``max_body_bytes`` and batches above ``max_batch`` requests are refused whole; the requests
  of a batch run one at a time with the event loop free between them, so no request blocks the API for long.
- every parameter is validated (public keys, signatures, u64 ranges, encodings); any failure is a JSON-RPC error
  (-32602 invalid params, -32603 internal error, logged), never an HTTP 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from solders.account import Account
from solders.hash import Hash, ParseHashError
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger.embedded import ALREADY_PROCESSED, FAUCET_LAMPORTS, EmbeddedLedger
from central.ledger.errors import (
    AirdropUnavailableError,
    AlreadyProcessedError,
    BlockhashNotFoundError,
    LedgerError,
    TransactionFailedError,
    TransactionRejectedError,
)
from central.ledger.port import MAX_SIGNATURES_PER_QUERY
from central.ledger.rpc_cluster import METHODS as CLUSTER_METHODS
from central.ledger.rpc_history import METHODS as HISTORY_METHODS
from central.ledger.rpc_params import (
    FEATURE_SET,
    SOLANA_CORE_VERSION,
    U64_MAX,
    Handler,
    RpcError,
    account_encoding,
    account_json,
    check_config,
    config,
    context,
    envelope,
    error_answer,
    invalid,
    load_json,
    param,
    pubkey,
    u64,
)
from central.ledger.rpc_pubsub import pubsub
from central.ledger.rpc_tokens import METHODS as TOKEN_METHODS
from central.ledger.transaction_json import b58decode

log = logging.getLogger(__name__)

LAMPORTS_PER_SIGNATURE = 5000

#: JSON-RPC airdrops never take the faucet below this: the rest is for central's own fee-payer top-ups.
FAUCET_RESERVE = FAUCET_LAMPORTS // 2


@dataclass(frozen=True)
class RpcLimits:
    """What the JSON-RPC endpoint accepts. The defaults are production-safe: no airdrops."""

    #: Development mode: serve ``requestAirdrop`` (otherwise it answers that airdrops are disabled).
    airdrop: bool = False
    #: Largest airdrop per call, total per address per window, and airdrops per window (all addresses).
    airdrop_max_lamports: int = 100 * 10**9
    airdrop_lamports_per_address: int = 1_000 * 10**9
    airdrops_per_window: int = 1_000
    airdrop_window_s: float = 3600.0
    #: Requests in one batch and bytes in one request body.
    max_batch: int = 100
    max_body_bytes: int = 512 * 1024

    def __post_init__(self) -> None:
        if not (0 < self.airdrop_max_lamports <= U64_MAX and 0 < self.airdrop_lamports_per_address <= U64_MAX
                and self.airdrops_per_window > 0 and self.airdrop_window_s > 0):
            raise ValueError("airdrop limits must be positive (lamports within u64)")
        if self.max_batch < 1 or self.max_body_bytes < 1024:
            raise ValueError("max_batch must be >= 1 and max_body_bytes >= 1024")


@dataclass
class _AirdropBudget:
    """Airdrops granted within the sliding window: (time, address, lamports), oldest first. Its size is bounded by
    ``airdrops_per_window``."""

    limits: RpcLimits
    granted: deque[tuple[float, Pubkey, int]] = field(default_factory=deque)

    def check(self, address: Pubkey, lamports: int, now: float) -> str | None:
        """Why this airdrop is refused now, or None."""
        while self.granted and self.granted[0][0] <= now - self.limits.airdrop_window_s:
            self.granted.popleft()
        window = f"{self.limits.airdrop_window_s:g} s"
        if lamports > self.limits.airdrop_max_lamports:
            return f"at most {self.limits.airdrop_max_lamports} lamports per airdrop"
        if len(self.granted) >= self.limits.airdrops_per_window:
            return f"at most {self.limits.airdrops_per_window} airdrops per {window}; try again later"
        given = sum(n for _t, a, n in self.granted if a == address)
        if given + lamports > self.limits.airdrop_lamports_per_address:
            return f"at most {self.limits.airdrop_lamports_per_address} lamports per address per {window}"
        return None

    def record(self, address: Pubkey, lamports: int, now: float) -> None:
        self.granted.append((now, address, lamports))


async def get_health(_ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return "ok"


async def get_version(_ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}


async def get_slot(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return ledger.slot


async def get_block_height(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return ledger.slot


async def get_latest_blockhash(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    latest = ledger.latest_blockhash()
    return {"context": context(ledger),
            "value": {"blockhash": str(latest.blockhash), "lastValidBlockHeight": latest.last_valid_block_height}}


def _preflight_failed(message: str, err: object, logs: list[str] | None = None) -> RpcError:
    """A node's answer to a send its preflight refused: -32002 with the simulation's result."""
    return RpcError(-32002, f"Transaction simulation failed: {message}",
                    {"err": err, "logs": logs or [], "accounts": None, "unitsConsumed": 0, "returnData": None,
                     "innerInstructions": None, "replacementBlockhash": None})


async def send_transaction(ledger: EmbeddedLedger, params: list[Any]) -> object:
    cfg = config(params, 1)
    tx = _decode_tx(params, cfg)
    skip = bool(cfg.get("skipPreflight", False))
    try:
        sig = ledger.send(tx, skip_preflight=skip)
    except TransactionFailedError as e:
        raise _preflight_failed(str(e.err), e.err, list(e.logs)) from None
    except BlockhashNotFoundError:
        raise _preflight_failed("Blockhash not found", "BlockhashNotFound") from None
    except AlreadyProcessedError:  # a node's preflight answer to a duplicate (-32003 means a bad signature)
        raise _preflight_failed("This transaction has already been processed", ALREADY_PROCESSED) from None
    except TransactionRejectedError as e:
        raise RpcError(-32003, f"Transaction rejected: {e}") from None
    return str(sig)


async def get_signature_statuses(ledger: EmbeddedLedger, params: list[Any]) -> object:
    sigs = param(params, 0)
    if not isinstance(sigs, list) or len(sigs) > MAX_SIGNATURES_PER_QUERY:
        raise invalid(f"Invalid params: expected a list of at most {MAX_SIGNATURES_PER_QUERY} signatures")
    out: list[object] = []
    for s in sigs:
        try:
            status = ledger.status(Signature.from_string(s))
        except (ValueError, TypeError):
            raise invalid("Invalid param: Invalid signature") from None
        if status is None:
            out.append(None)
        else:
            out.append({"slot": status.slot, "confirmations": None, "err": status.err,
                        "status": {"Ok": None} if status.err is None else {"Err": status.err},
                        "confirmationStatus": status.confirmation_status})
    return {"context": context(ledger), "value": out}


async def get_balance(ledger: EmbeddedLedger, params: list[Any]) -> object:
    acc = ledger.account(pubkey(param(params, 0)))
    return {"context": context(ledger), "value": acc.lamports if acc is not None else 0}


async def get_minimum_balance_for_rent_exemption(ledger: EmbeddedLedger, params: list[Any]) -> object:
    size = u64(param(params, 0), "the data length")
    return ledger.rent_exempt_minimum(size)


async def request_airdrop(ledger: EmbeddedLedger, params: list[Any]) -> object:  # noqa: ARG001
    """Replaced per app by ``_airdrop_handler`` (disabled unless ``RpcLimits.airdrop``)."""
    raise RpcError(-32600, "airdrop request failed: airdrops are disabled on this endpoint "
                           "(development only: ledger.rpc_airdrop = true)")


def _airdrop_handler(limits: RpcLimits) -> Handler:
    if not limits.airdrop:
        return request_airdrop
    budget = _AirdropBudget(limits)

    async def airdrop(ledger: EmbeddedLedger, params: list[Any]) -> object:
        address = pubkey(param(params, 0))
        lamports = u64(param(params, 1), "lamports", minimum=1)
        now = time.monotonic()
        refused = budget.check(address, lamports, now)
        if refused is None and ledger.faucet_lamports - lamports < FAUCET_RESERVE:
            refused = "the faucet's remaining lamports are reserved for central's fee payer"
        if refused is None and ledger.account(address) is None and lamports < ledger.rent_exempt_minimum(0):
            refused = f"a new account needs at least {ledger.rent_exempt_minimum(0)} lamports (rent exemption)"
        if refused is not None:
            raise RpcError(-32600, f"airdrop request failed: {refused}")
        budget.record(address, lamports, now)  # an attempt lands a transaction (and its fee) even if it fails
        try:
            sig = ledger.airdrop(address, lamports)
        except AirdropUnavailableError as e:
            raise RpcError(-32600, f"airdrop request failed: {e}") from None
        return str(sig)

    return airdrop


def _decode_tx(params: list[Any], cfg: dict[str, Any]) -> VersionedTransaction:
    raw_param = param(params, 0)
    if not isinstance(raw_param, str):
        raise invalid("Invalid params: expected an encoded transaction")
    encoding = cfg.get("encoding", "base58")
    try:
        if encoding == "base64":
            raw = base64.b64decode(raw_param, validate=True)
        elif encoding == "base58":
            raw = b58decode(raw_param)
        else:
            raise invalid(f"Invalid params: unsupported encoding {encoding!r}")
        return VersionedTransaction.from_bytes(raw)
    except (ValueError, TypeError):
        raise invalid("Invalid params: failed to deserialize VersionedTransaction") from None


async def simulate_transaction(ledger: EmbeddedLedger, params: list[Any]) -> object:
    cfg = config(params, 1)
    tx = _decode_tx(params, cfg)
    wanted = _simulation_accounts(cfg, tx)
    sig_verify, replace = bool(cfg.get("sigVerify", False)), bool(cfg.get("replaceRecentBlockhash", False))
    if sig_verify and replace:
        raise invalid("sigVerify may not be used with replaceRecentBlockhash")
    err: object
    post: dict[Pubkey, Account | None]
    logs: list[str]
    if not replace and not ledger.blockhash_valid(tx.message.recent_blockhash):  # as a node's bank: no simulation
        err, logs, units, post = "BlockhashNotFound", [], 0, {}
    else:
        err, logs, units, post = ledger.simulate(tx, sig_verify=sig_verify)
    accounts: list[object] | None = None
    if wanted is not None:  # as a node: the accounts after the simulation, all null when it failed
        addresses, acc_cfg = wanted
        accounts = [None if err is not None else
                    account_json(ledger, post[a] if a in post else ledger.account(a), acc_cfg) for a in addresses]
    replacement = None
    if replace:
        latest = ledger.latest_blockhash()
        replacement = {"blockhash": str(latest.blockhash), "lastValidBlockHeight": latest.last_valid_block_height}
    return {"context": context(ledger),
            "value": {"err": err, "logs": logs, "accounts": accounts, "unitsConsumed": units, "returnData": None,
                      "innerInstructions": None, "replacementBlockhash": replacement}}


def _simulation_accounts(cfg: dict[str, Any], tx: VersionedTransaction) -> tuple[list[Pubkey], dict[str, Any]] | None:
    """simulateTransaction's ``accounts: {addresses, encoding}``: the addresses and their encoding, as a node
    validates them (no base58; at most as many as the transaction's account keys)."""
    wanted = cfg.get("accounts")
    if wanted is None:
        return None
    if not isinstance(wanted, dict) or not isinstance(wanted.get("addresses"), list):
        raise invalid("Invalid params: accounts must be {addresses: [...], encoding}")
    acc_cfg = {"encoding": wanted.get("encoding") or "base64"}
    if acc_cfg["encoding"] in ("base58", "binary"):
        raise invalid("base58 encoding not supported")
    account_encoding(acc_cfg)
    most = len(tx.message.account_keys)
    if len(wanted["addresses"]) > most:
        raise invalid(f"Too many accounts provided; max {most}")
    return [pubkey(a) for a in wanted["addresses"]], acc_cfg


async def get_fee_for_message(ledger: EmbeddedLedger, params: list[Any]) -> object:
    raw = param(params, 0)
    if not isinstance(raw, str):
        raise invalid("Invalid params: expected a base64 message")
    try:
        data = base64.b64decode(raw, validate=True)
        header = MessageV0.from_bytes(data[1:]).header if data and data[0] & 0x80 else Message.from_bytes(data).header
    except (ValueError, TypeError):
        raise invalid("Invalid params: failed to deserialize message") from None
    return {"context": context(ledger), "value": LAMPORTS_PER_SIGNATURE * header.num_required_signatures}


async def is_blockhash_valid(ledger: EmbeddedLedger, params: list[Any]) -> object:
    try:
        h = Hash.from_string(param(params, 0))
    except (ValueError, TypeError, ParseHashError):  # ParseHashError (wrong length) is not a ValueError
        raise invalid("Invalid param: Invalid blockhash") from None
    return {"context": context(ledger), "value": ledger.blockhash_valid(h)}


async def get_genesis_hash(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return str(ledger.genesis_hash)


async def get_epoch_info(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    slot = ledger.slot
    return {"absoluteSlot": slot, "blockHeight": slot, "epoch": 0, "slotIndex": slot, "slotsInEpoch": 432_000,
            "transactionCount": ledger.transaction_count}


METHODS: dict[str, Handler] = {
    "getHealth": get_health,
    "getVersion": get_version,
    "getSlot": get_slot,
    "getBlockHeight": get_block_height,
    "getLatestBlockhash": get_latest_blockhash,
    "sendTransaction": send_transaction,
    "getSignatureStatuses": get_signature_statuses,
    "getBalance": get_balance,
    "getMinimumBalanceForRentExemption": get_minimum_balance_for_rent_exemption,
    "requestAirdrop": request_airdrop,
    # What wallets and explorers commonly ask besides the project's own subset.
    "simulateTransaction": simulate_transaction,
    "getFeeForMessage": get_fee_for_message,
    "isBlockhashValid": is_blockhash_valid,
    "getGenesisHash": get_genesis_hash,
    "getEpochInfo": get_epoch_info,
    **TOKEN_METHODS,
    **HISTORY_METHODS,
    **CLUSTER_METHODS,
}


async def _dispatch(ledger: EmbeddedLedger, handler: Handler | None, params: object) -> object:
    if handler is None:
        raise RpcError(-32601, "Method not found")
    if not isinstance(params, list):
        raise invalid("Invalid params: expected an array")
    check_config(ledger, params)
    return await handler(ledger, params)


async def _call(ledger: EmbeddedLedger, methods: dict[str, Handler], req: object) -> dict[str, object]:
    parts = envelope(req)
    if parts is None:
        return error_answer(-32600, "Invalid request")
    rid, method, params = parts
    try:
        result = await _dispatch(ledger, methods.get(method), params)
        json.dumps(result)  # an unencodable result is this endpoint's bug: answered as an internal error below
    except RpcError as e:
        return error_answer(e.code, e.message, rid, e.data)
    except LedgerError as e:
        log.warning("json-rpc %s failed: %s", method[:64], e)
        return error_answer(-32603, f"Internal error: {e}", rid)
    except Exception:  # no input may crash the endpoint: logged, answered in JSON-RPC form
        log.exception("json-rpc %s failed unexpectedly", method[:64])
        return error_answer(-32603, "Internal error", rid)
    return {"jsonrpc": "2.0", "result": result, "id": rid}


def jsonrpc_app(ledger: EmbeddedLedger, limits: RpcLimits | None = None) -> web.Application:
    limits = limits or RpcLimits()
    methods = {**METHODS, "requestAirdrop": _airdrop_handler(limits)}

    async def answer(request: web.Request) -> web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                error_answer(-32600, f"Invalid request: body larger than {limits.max_body_bytes} bytes"), status=413
            )
        try:
            body = load_json(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
            return web.json_response(error_answer(-32700, "Parse error"))
        if isinstance(body, list):
            if not body:
                return web.json_response(error_answer(-32600, "Invalid request"))
            if len(body) > limits.max_batch:
                return web.json_response(
                    error_answer(-32600, f"Invalid request: a batch holds at most {limits.max_batch} requests")
                )
            out = []
            for r in body:
                out.append(await _call(ledger, methods, r))
                await asyncio.sleep(0)  # let the API's other work run between the requests of a batch
            return web.json_response(out)
        return web.json_response(await _call(ledger, methods, body))

    async def handle(request: web.Request) -> web.Response:
        try:
            return await answer(request)
        except Exception:  # never an HTTP 500 from this endpoint
            log.exception("json-rpc request failed unexpectedly")
            return web.json_response(error_answer(-32603, "Internal error"))

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def websocket(request: web.Request) -> web.StreamResponse:
        if not web.WebSocketResponse().can_prepare(request).ok:
            return web.json_response(
                error_answer(-32600, "Invalid request: POST a JSON-RPC request, or open a websocket for subscriptions"),
                status=405,
            )
        return await pubsub(ledger, request, limits.max_body_bytes)

    app = web.Application(client_max_size=limits.max_body_bytes)
    app.router.add_post("/", handle)
    app.router.add_get("/health", health)
    app.router.add_get("/", websocket)
    return app


@dataclass
class JsonRpcServer:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(ledger: EmbeddedLedger, host: str = "127.0.0.1", port: int = 8899, *,
                limits: RpcLimits | None = None, ws_port: int = 0) -> JsonRpcServer:
    """Serve the ledger's JSON-RPC on ``host:port`` (port 0 picks a free one) within ``limits`` (default: no
    airdrops). Its PubSub websocket is on the same port and, best effort, on ``ws_port`` too (0: not)."""
    runner = web.AppRunner(jsonrpc_app(ledger, limits), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise LedgerError(f"cannot serve the ledger's JSON-RPC on {host}:{port}: {e.strerror} "
                          "(set ledger.rpc_port, 0 = any free port)") from None
    server = site._server
    assert server is not None
    bound = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    if ws_port:  # where web3.js looks by default: the next port (8899 -> 8900)
        try:
            await web.TCPSite(runner, host, ws_port).start()
        except OSError as e:
            log.warning("json-rpc websocket not served on %s:%d (%s); it is on ws://%s:%d", host, ws_port,
                        e.strerror, host, bound)
    return JsonRpcServer(runner, host, bound)
