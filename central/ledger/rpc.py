"""The rpc adapter: the ``Ledger`` port over Solana JSON-RPC with solana-py's ``AsyncClient`` (any cluster URL, or
the embedded ledger's own endpoint). solana-py / httpx errors are translated into ``central.ledger.errors``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.models import TxOpts
from solders.account import Account
from solders.errors import SerdeJSONError
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger.errors import (
    AirdropUnavailableError,
    AlreadyProcessedError,
    BlockhashNotFoundError,
    LedgerUnavailableError,
    TransactionFailedError,
    TransactionRejectedError,
)
from central.ledger.port import (
    MAX_ACCOUNTS_PER_QUERY,
    MAX_SIGNATURES_PER_QUERY,
    LatestBlockhash,
    SignatureStatus,
    TokenAmount,
    TransactionRecord,
)

T = TypeVar("T")

_CODES = {
    "InvalidParamsMessage": -32602,
    "SendTransactionPreflightFailureMessage": -32002,
    "RpcCustomErrorFieldless": -32003,
}


def _rpc_error(exc: RPCException) -> dict[str, Any]:
    """The JSON-RPC error object carried by a solana-py ``RPCException``."""
    arg = exc.args[0] if exc.args else None
    if arg is None or not hasattr(arg, "to_json"):
        return {"code": 0, "message": str(arg)}
    try:
        parsed = json.loads(arg.to_json())
    except (ValueError, TypeError):
        return {"code": 0, "message": str(arg)}
    if not isinstance(parsed, dict):
        return {"code": 0, "message": str(parsed)}
    # solders drops the code of the error kinds it models as classes; restore it from the class.
    parsed.setdefault("code", _CODES.get(type(arg).__name__, 0))
    return parsed


async def _call(aw: Awaitable[T], *, rpc_errors: bool = False) -> T:
    """Await a solana-py call, translating failures. JSON-RPC error answers become ``LedgerUnavailableError``
    unless ``rpc_errors`` (then the caller handles ``RPCException`` itself)."""
    try:
        return await aw
    except RPCException as e:
        if rpc_errors:
            raise
        raise LedgerUnavailableError(f"ledger RPC error: {_rpc_error(e).get('message')}") from None
    except SolanaRpcException as e:
        raise LedgerUnavailableError(f"ledger RPC unreachable: {e}") from None
    except RPCNoResultException as e:
        raise LedgerUnavailableError(f"ledger RPC returned no result: {e}") from None
    except (ValueError, SerdeJSONError) as e:  # solders could not parse the answer: not a Solana JSON-RPC endpoint
        raise LedgerUnavailableError(f"ledger RPC answered something unparseable: {e}") from None


class RpcLedger:
    """``Ledger`` over JSON-RPC. ``commitment`` applies to reads and preflight ("confirmed" by default)."""

    def __init__(self, url: str, *, commitment: str = "confirmed", timeout: float = 10.0) -> None:
        self.url = url
        self._commitment = Commitment(commitment)
        self._client = AsyncClient(url, commitment=self._commitment, timeout=timeout)

    async def close(self) -> None:
        await self._client.close()

    async def get_latest_blockhash(self) -> LatestBlockhash:
        resp = await _call(self._client.get_latest_blockhash())
        return LatestBlockhash(resp.value.blockhash, resp.value.last_valid_block_height)

    async def get_block_height(self) -> int:
        return int((await _call(self._client.get_block_height())).value)

    async def get_slot(self) -> int:
        return int((await _call(self._client.get_slot())).value)

    async def send_transaction(self, tx: VersionedTransaction, *, skip_preflight: bool = True) -> Signature:
        opts = TxOpts(skip_preflight=skip_preflight, skip_confirmation=True, preflight_commitment=self._commitment)
        try:
            resp = await _call(self._client.send_raw_transaction(bytes(tx), opts=opts), rpc_errors=True)
        except RPCException as e:
            err = _rpc_error(e)
            message = str(err.get("message", ""))
            data = err.get("data") if isinstance(err.get("data"), dict) else {}
            tx_err = data.get("err") if isinstance(data, dict) else None
            if tx_err == "BlockhashNotFound" or "Blockhash not found" in message:
                raise BlockhashNotFoundError("BlockhashNotFound") from None
            if tx_err == "AlreadyProcessed":  # a duplicate: refused outright, as by the embedded ledger
                raise AlreadyProcessedError("transaction rejected: AlreadyProcessed") from None
            if err.get("code") == -32002 and tx_err is not None:
                logs = tuple(data.get("logs") or ()) if isinstance(data, dict) else ()
                raise TransactionFailedError(f"transaction simulation failed: {tx_err}", err=tx_err,
                                             logs=logs) from None
            raise TransactionRejectedError(f"transaction rejected: {message}") from None
        return resp.value

    async def get_signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        out: list[SignatureStatus | None] = []
        for i in range(0, len(signatures), MAX_SIGNATURES_PER_QUERY):
            chunk = list(signatures[i:i + MAX_SIGNATURES_PER_QUERY])
            resp = await _call(self._client.get_signature_statuses(chunk, search_transaction_history=True))
            for st in resp.value:
                if st is None:
                    out.append(None)
                    continue
                raw = json.loads(st.to_json())
                out.append(SignatureStatus(int(raw["slot"]), raw.get("err"),
                                           str(raw.get("confirmationStatus") or "processed")))
        return out

    async def get_account(self, address: Pubkey) -> Account | None:
        resp = await _call(self._client.get_account_info(address, encoding="base64"))
        return resp.value

    async def get_multiple_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        out: list[Account | None] = []
        for i in range(0, len(addresses), MAX_ACCOUNTS_PER_QUERY):
            chunk = list(addresses[i:i + MAX_ACCOUNTS_PER_QUERY])
            resp = await _call(self._client.get_multiple_accounts(chunk, encoding="base64"))
            out.extend(resp.value)
        return out

    async def get_balance(self, address: Pubkey) -> int:
        return int((await _call(self._client.get_balance(address))).value)

    async def get_token_account_balance(self, address: Pubkey) -> TokenAmount | None:
        try:
            resp = await _call(self._client.get_token_account_balance(address), rpc_errors=True)
        except RPCException as e:
            if _rpc_error(e).get("code") == -32602:
                return None  # "could not find account" / not a token account
            raise LedgerUnavailableError(f"getTokenAccountBalance failed: {_rpc_error(e).get('message')}") from None
        return TokenAmount(int(resp.value.amount), int(resp.value.decimals))

    async def get_minimum_balance_for_rent_exemption(self, size: int) -> int:
        return int((await _call(self._client.get_minimum_balance_for_rent_exemption(size))).value)

    async def request_airdrop(self, address: Pubkey, lamports: int) -> Signature:
        try:
            resp = await _call(self._client.request_airdrop(address, lamports), rpc_errors=True)
        except RPCException as e:
            raise AirdropUnavailableError(f"airdrop refused: {_rpc_error(e).get('message')}") from None
        return resp.value

    async def get_transaction(self, signature: Signature) -> TransactionRecord | None:
        resp = await _call(self._client.get_transaction(signature, encoding="base64",
                                                        max_supported_transaction_version=0))
        found = resp.value
        if found is None:
            return None
        meta = found.transaction.meta
        tx = found.transaction.transaction
        if not isinstance(tx, VersionedTransaction):
            raise LedgerUnavailableError("getTransaction returned an undecodable transaction")
        err = json.loads(meta.to_json()).get("err") if meta is not None else None
        return TransactionRecord(signature, int(found.slot), found.block_time, tx, err,
                                 int(meta.fee) if meta is not None else 0,
                                 tuple(meta.log_messages or ()) if meta is not None else ())
