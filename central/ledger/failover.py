"""RPC failover: the ``Ledger`` port over several JSON-RPC providers of ONE cluster (``ledger.rpc_urls``).

- **Reads** go to the first healthy provider in the configured order; a provider that fails (unreachable, garbage,
  an RPC error) is marked down for ``retry_after_s`` and the read moves on to the next one. When every provider is
  down, each is tried once more before ``LedgerUnavailableError`` is raised (so a recovered provider is found at
  once). ``check_health`` (a job, every ``ledger.rpc_health_interval_ms``) reads every provider's block height and
  also marks down a provider lagging more than ``max_lag_slots`` behind the best one; it comes back when it has
  caught up.
- **Submissions** are sent to the first healthy provider; when the send fails for a transport reason (the provider
  died before or after forwarding it — the outcome is unknown), the *same signed bytes* go to the next provider.
  Same bytes, same signature: a transaction can land at most once whichever providers received it, so nothing is
  doubled, and nothing is lost as long as one provider is up. Answers about the transaction itself (rejected,
  blockhash not found, preflight failure) are not transport failures and are raised as they are — except after an
  earlier provider failed mid-send: then a refusal ("already processed" with preflight, or a lagging provider's
  "blockhash not found") may be about a transaction that landed through the dead one, so it is raised as
  ``SendOutcomeUnknownError`` (a ``LedgerUnavailableError``: the outcome is learned from the signature status,
  never assumed). When every
  provider fails the send, ``LedgerUnavailableError`` is raised and the chain outbox's reconciliation decides the
  outcome by signature status (it re-broadcasts the same bytes while they are still valid, and rebuilds only once
  the transaction can no longer land).
- **Reconciliation stays sound across a switch**: the chain outbox reads the block height first and the statuses
  after, and concludes "expired" only from "unknown at a height past the last valid block height". That is right
  only if the provider giving the statuses has seen at least that height: statuses are therefore taken only from a
  provider whose own block height is at least the highest height this object has returned (checked with one more
  read when the provider differs from the one that gave the height); a provider behind it is skipped.

Provider URLs can carry API keys, so logs and errors name providers by their position (``provider 1``), never by
URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Gauge
from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger.errors import (
    LedgerError,
    LedgerUnavailableError,
    TransactionFailedError,
    TransactionRejectedError,
)
from central.ledger.port import LatestBlockhash, Ledger, SignatureStatus, TokenAmount, TransactionRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

PROVIDER_UP = Gauge("gtx_ledger_rpc_provider_up", "1 while a ledger RPC provider is healthy (by position in "
                    "ledger.rpc_urls, from 1).", ["provider"])
PROVIDER_HEIGHT = Gauge("gtx_ledger_rpc_provider_block_height", "Last block height a ledger RPC provider reported.",
                        ["provider"])


class SendOutcomeUnknownError(LedgerUnavailableError):
    """A provider refused a transaction after another one failed mid-send: it may have landed through the other."""


@dataclass
class _Provider:
    number: int
    ledger: Ledger
    down_until: float = 0.0
    #: marked down by the health check for lagging (cleared by the next check that finds it caught up)
    lagging: bool = False
    height: int = 0

    @property
    def name(self) -> str:
        return f"provider {self.number}"


@dataclass(frozen=True)
class ProviderHealth:
    number: int
    up: bool
    height: int


class FailoverLedger:
    """``Ledger`` over several providers of one cluster (see the module docstring)."""

    def __init__(self, providers: Sequence[Ledger], *, retry_after_s: float = 5.0, max_lag_slots: int = 150,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not providers:
            raise ValueError("at least one RPC provider is needed")
        self._providers = [_Provider(i + 1, p) for i, p in enumerate(providers)]
        self._retry_after = retry_after_s
        self._max_lag = max_lag_slots
        self._clock = clock
        #: the highest block height returned to a caller, and the provider that gave it
        self._height_seen = 0
        self._height_from: _Provider | None = None
        for p in self._providers:
            PROVIDER_UP.labels(str(p.number)).set(1)

    # ------------------------------------------------------------------------------------------- provider choice

    def _up(self, p: _Provider) -> bool:
        return not p.lagging and p.down_until <= self._clock()

    def _order(self) -> list[_Provider]:
        """Healthy providers first (configured order), then the others (a last try each)."""
        up = [p for p in self._providers if self._up(p)]
        return up + [p for p in self._providers if p not in up]

    def _mark_down(self, p: _Provider, error: LedgerError) -> None:
        if self._up(p):
            log.warning("ledger RPC %s is down for %.1f s: %s", p.name, self._retry_after, type(error).__name__)
        p.down_until = self._clock() + self._retry_after
        PROVIDER_UP.labels(str(p.number)).set(0)

    def _mark_up(self, p: _Provider) -> None:
        if p.down_until:
            log.info("ledger RPC %s answers again", p.name)
        p.down_until = 0.0
        if not p.lagging:
            PROVIDER_UP.labels(str(p.number)).set(1)

    async def _first(self, op: Callable[[_Provider], Awaitable[T]], what: str) -> T:
        errors: list[str] = []
        for p in self._order():
            try:
                result = await op(p)
            except SendOutcomeUnknownError:
                raise
            except LedgerUnavailableError as e:
                self._mark_down(p, e)
                errors.append(f"{p.name}: {type(e).__name__}")
                continue
            self._mark_up(p)
            return result
        raise LedgerUnavailableError(f"{what}: no ledger RPC provider answered ({', '.join(errors)})")

    def health(self) -> list[ProviderHealth]:
        return [ProviderHealth(p.number, self._up(p), p.height) for p in self._providers]

    async def check_health(self) -> None:
        """Read every provider's block height; mark down the unreachable and those lagging beyond
        ``max_lag_slots``. Raises ``LedgerUnavailableError`` when none answers (the job runner logs and counts it)."""
        answered = False
        for p in self._providers:
            try:
                p.height = await p.ledger.get_block_height()
            except LedgerUnavailableError as e:
                self._mark_down(p, e)
                continue
            answered = True
            PROVIDER_HEIGHT.labels(str(p.number)).set(p.height)
            self._mark_up(p)
        if not answered:
            raise LedgerUnavailableError("no ledger RPC provider answered the health check")
        best = max(p.height for p in self._providers)
        for p in self._providers:
            lagging = p.down_until == 0.0 and best - p.height > self._max_lag
            if lagging != p.lagging:
                log.warning("ledger RPC %s %s (height %d, best %d)", p.name,
                            "lags behind; not used" if lagging else "caught up", p.height, best)
            p.lagging = lagging
            PROVIDER_UP.labels(str(p.number)).set(int(self._up(p)))

    # ------------------------------------------------------------------------------------------- the port

    async def get_latest_blockhash(self) -> LatestBlockhash:
        return await self._first(lambda p: p.ledger.get_latest_blockhash(), "getLatestBlockhash")

    async def get_block_height(self) -> int:
        async def height(p: _Provider) -> int:
            h = await p.ledger.get_block_height()
            p.height = max(p.height, h)
            if h > self._height_seen:
                self._height_seen, self._height_from = h, p
            return h

        return await self._first(height, "getBlockHeight")

    async def get_slot(self) -> int:
        return await self._first(lambda p: p.ledger.get_slot(), "getSlot")

    async def send_transaction(self, tx: VersionedTransaction, *, skip_preflight: bool = True) -> Signature:
        # The same bytes to each provider in turn until one takes them (see the module docstring).
        failed: list[str] = []

        async def send(p: _Provider) -> Signature:
            try:
                return await p.ledger.send_transaction(tx, skip_preflight=skip_preflight)
            except LedgerUnavailableError:
                failed.append(p.name)
                raise
            except (TransactionRejectedError, TransactionFailedError) as e:
                if not failed:
                    raise
                raise SendOutcomeUnknownError(
                    f"{p.name} refused a transaction that {', '.join(failed)} may have forwarded before failing "
                    f"({type(e).__name__}); its outcome is known only from its signature status") from None

        return await self._first(send, "sendTransaction")

    async def get_signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        async def statuses(p: _Provider) -> list[SignatureStatus | None]:
            if p is not self._height_from and self._height_seen:
                h = await p.ledger.get_block_height()
                p.height = max(p.height, h)
                if h < self._height_seen:
                    # Behind the height the caller already saw: its "unknown" could be a landed transaction.
                    raise LedgerUnavailableError(f"{p.name} is behind block height {self._height_seen}")
            return await p.ledger.get_signature_statuses(signatures)

        return await self._first(statuses, "getSignatureStatuses")

    async def get_account(self, address: Pubkey) -> Account | None:
        return await self._first(lambda p: p.ledger.get_account(address), "getAccountInfo")

    async def get_multiple_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        return await self._first(lambda p: p.ledger.get_multiple_accounts(addresses), "getMultipleAccounts")

    async def get_balance(self, address: Pubkey) -> int:
        return await self._first(lambda p: p.ledger.get_balance(address), "getBalance")

    async def get_token_account_balance(self, address: Pubkey) -> TokenAmount | None:
        return await self._first(lambda p: p.ledger.get_token_account_balance(address), "getTokenAccountBalance")

    async def get_minimum_balance_for_rent_exemption(self, size: int) -> int:
        return await self._first(lambda p: p.ledger.get_minimum_balance_for_rent_exemption(size),
                                 "getMinimumBalanceForRentExemption")

    async def request_airdrop(self, address: Pubkey, lamports: int) -> Signature:
        return await self._first(lambda p: p.ledger.request_airdrop(address, lamports), "requestAirdrop")

    async def get_transaction(self, signature: Signature) -> TransactionRecord | None:
        return await self._first(lambda p: p.ledger.get_transaction(signature), "getTransaction")

    async def close(self) -> None:
        for p in self._providers:
            await p.ledger.close()
