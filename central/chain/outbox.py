"""The durable chain outbox (PostgreSQL): exactly-once changes to the chain, across crashes.

Generic: minting and settlement each run an outbox of their own ``kind`` and give it a ``UnitBuilder`` that turns
intents into packing units (instructions that must land together). The discipline:

1. ``enqueue``: an intent with a unique (kind, key) — enqueueing twice is a no-op.
2. ``submit``: claim pending intents (``FOR UPDATE SKIP LOCKED``, so several workers can run), build units, pack them
   into as few transactions as fit, sign them with a fresh blockhash, and — in the same database transaction —
   record every transaction (signature, last valid block height, raw bytes) and mark its intents ``submitted``.
   A unit that does not fit one transaction alone is split: the builder re-builds each half of its intents
   (recursively); only a single intent whose unit cannot fit is ``failed``. A ``solo`` intent is always built and
   sent alone.
   Only after that commit are the transactions sent (write-ahead: a signature is recorded before it can exist on
   chain, so a crash anywhere never leaves an unknown transaction on chain).
3. ``reconcile``: for every open submission, read the block height FIRST, then the signature statuses:
   - landed without error (confirmed/finalized) → submission and intents ``confirmed``;
   - landed with an error (atomic: nothing applied) → a multi-intent transaction sends its intents back to
     ``pending`` marked ``solo`` (each retried in a transaction of its own, so one bad intent cannot block the
     others); a solo intent becomes ``failed`` (admin view, ``retry_failed``);
   - unknown and the height read before was already past its last valid block height → it can never land:
     ``expired``, intents back to ``pending`` (a new transaction, new blockhash);
   - unknown and still valid → re-broadcast the same bytes (same signature: it can land at most once) and wait.
   A submitted intent is therefore never re-sent as a new transaction while its previous one could still land.
   After a restart, ``step`` reconciles before it submits anything new.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import asyncpg
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.chain.errors import OutboxError
from central.chain.metrics import INTENTS, OPEN_SUBMISSIONS, TRANSACTIONS
from central.errors import CentralError
from central.ledger.builder import sign
from central.ledger.cosign import CONFIRMED_LEVELS, FINALIZED_ONLY, Verdict, decide
from central.ledger.errors import LedgerError, LedgerUnavailableError, TransactionTooLargeError
from central.ledger.keys import PlatformKey
from central.ledger.packing import Packed, Trailer, Unit, fits, pack
from central.ledger.port import Ledger, SignatureStatus

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Intent:
    id: int
    key: str
    payload: dict[str, Any]
    attempts: int
    solo: bool


class UnitBuilder(Protocol):
    """Turn claimed intents into packing units. Each unit's ``tag`` must be the tuple of intent ids it carries
    out (usually one). Intents left out of every unit are deferred (retried after ``defer_seconds``)."""

    def __call__(self, intents: Sequence[Intent]) -> Awaitable[Sequence[Unit]]: ...


@dataclass(frozen=True)
class OutboxConfig:
    kind: str
    #: Intents claimed per submit round.
    batch_size: int = 2000
    #: Units per transaction at most (None: as many as fit the size and compute limits).
    max_units_per_tx: int | None = None
    compute_unit_price: int | None = None
    #: Re-send a still-valid, still-unknown transaction after this many seconds.
    rebroadcast_after: float = 2.0
    #: Intents the builder skipped are not claimed again for this long.
    defer_seconds: float = 30.0
    #: Submissions reconciled per round.
    reconcile_batch: int = 5000
    #: Confirm intents only at "finalized" (embedded ledger: fsynced to disk, so even a power loss cannot undo a
    #: confirmed intent; a cluster: rooted). Default: "confirmed" is enough.
    require_finalized: bool = False


@dataclass
class StepResult:
    submitted: int = 0
    transactions: int = 0
    confirmed: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    open_submissions: int = 0
    deferred: int = 0

    @property
    def idle(self) -> bool:
        return self.submitted == 0 and self.open_submissions == 0


@dataclass(frozen=True)
class IntentView:
    key: str
    state: str
    payload: dict[str, Any]
    signature: str | None
    attempts: int
    last_error: str | None


async def enqueue(conn: asyncpg.Connection | asyncpg.Pool, kind: str, key: str, payload: Mapping[str, Any]) -> bool:
    """Add an intent; returns False if (kind, key) already exists (whatever its state)."""
    row = await conn.fetchrow(
        "INSERT INTO chain_intent (kind, key, payload) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (kind, key) DO NOTHING RETURNING id", kind, key, json.dumps(dict(payload)))
    return row is not None


async def enqueue_many(conn: asyncpg.Connection | asyncpg.Pool, kind: str,
                       items: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
    """Add many intents in one statement; returns how many were new."""
    if not items:
        return 0
    keys = [k for k, _ in items]
    payloads = [json.dumps(dict(p)) for _, p in items]
    rows = await conn.fetch(
        "INSERT INTO chain_intent (kind, key, payload) "
        "SELECT $1, k, p::jsonb FROM unnest($2::text[], $3::text[]) AS t(k, p) "
        "ON CONFLICT (kind, key) DO NOTHING RETURNING id", kind, keys, payloads)
    return len(rows)


@dataclass
class _Verdicts:
    confirmed: list[tuple[int, int]] = field(default_factory=list)
    failed_multi: list[tuple[int, str]] = field(default_factory=list)
    failed_solo: list[tuple[int, str]] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    rebroadcast: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass
class _Prepared:
    tx: VersionedTransaction
    intent_ids: list[int] = field(default_factory=list)


class ChainOutbox:
    """One kind of intents driven onto the chain. ``hook(point)`` is called at the crash-test points
    ``"before_send"`` (recorded, not sent), ``"after_send"`` (sent, outcome not recorded) and
    ``"before_record_status"`` (statuses read, not yet written)."""

    def __init__(self, pool: asyncpg.Pool, ledger: Ledger, config: OutboxConfig, *, payer: PlatformKey,
                 signers: Sequence[PlatformKey], build: UnitBuilder, trailer: Trailer | None = None,
                 lookup_tables: Sequence[AddressLookupTableAccount] = (),
                 hook: Callable[[str], None] | None = None) -> None:
        self._pool = pool
        self._ledger = ledger
        self.config = config
        self._payer = payer
        self._signers = [payer, *signers]
        self._build = build
        self._trailer = trailer
        self._tables = list(lookup_tables)
        self._hook = hook or (lambda _point: None)

    @property
    def kind(self) -> str:
        return self.config.kind

    async def enqueue(self, key: str, payload: Mapping[str, Any], conn: asyncpg.Connection | None = None) -> bool:
        return await enqueue(conn or self._pool, self.kind, key, payload)

    async def enqueue_many(self, items: Sequence[tuple[str, Mapping[str, Any]]],
                           conn: asyncpg.Connection | None = None) -> int:
        return await enqueue_many(conn or self._pool, self.kind, items)

    # --------------------------------------------------------------------------------------------- submit

    async def _pack_isolating(self, units: Sequence[Unit], by_id: Mapping[int, Intent], blockhash: Any, *,
                              rejected: list[int], left_out: list[int]) -> list[Packed]:
        """Pack; first make every unit fit a transaction alone. A unit that does not fit and carries several intents
        is split: the builder re-builds each half of its intents (recursively); only a single-intent unit that still
        does not fit goes to ``rejected``. A unit carrying a ``solo`` intent with others is split too, so that every
        solo intent is sent (and succeeds or fails) alone. Intents the builder leaves out of a re-build go to
        ``left_out``. Units are salted with their intents' attempt counts: a retry never rebuilds a byte-identical
        transaction (which the ledger would deduplicate against the failed or expired one).

        ``pack`` checks each unit's size as it packs, so in the usual round (no unit mixes a solo intent with others,
        every unit fits alone) it is tried first and nothing is measured twice; only when it refuses a unit as too
        large are the units checked one by one and split."""
        if not any(self._mixes_solo(u, by_id) for u in units):
            with contextlib.suppress(TransactionTooLargeError):
                return self._pack_salted(units, by_id, blockhash)
        fitting = await self._fitting(units, by_id, blockhash, rejected, left_out)
        return self._pack_salted(fitting, by_id, blockhash)

    def _mixes_solo(self, unit: Unit, by_id: Mapping[int, Intent]) -> bool:
        ids = self._unit_ids(unit)
        return len(ids) > 1 and any(by_id[i].solo for i in ids)

    def _pack_salted(self, units: Sequence[Unit], by_id: Mapping[int, Intent], blockhash: Any) -> list[Packed]:
        """Salt every unit with its intents' attempts and pack solo units one per transaction, the others together.
        Raises ``TransactionTooLargeError`` if a unit cannot fit a transaction alone."""
        solo_units: list[Unit] = []
        batch_units: list[Unit] = []
        for unit in units:
            ids = self._unit_ids(unit)
            salted = replace(unit, salt=sum(by_id[i].attempts for i in ids))
            (solo_units if any(by_id[i].solo for i in ids) else batch_units).append(salted)
        packs = self._pack(batch_units, blockhash, solo=False) if batch_units else []
        return packs + (self._pack(solo_units, blockhash, solo=True) if solo_units else [])

    async def _fitting(self, units: Sequence[Unit], by_id: Mapping[int, Intent], blockhash: Any,
                       rejected: list[int], left_out: list[int]) -> list[Unit]:
        out: list[Unit] = []
        for u in units:
            ids = self._unit_ids(u)
            if self._mixes_solo(u, by_id):
                solo = [i for i in ids if by_id[i].solo]
                rest = [i for i in ids if not by_id[i].solo]
                parts = [[i] for i in solo] + ([rest] if rest else [])
            elif self._fits(u, blockhash):
                out.append(u)
                continue
            elif len(ids) == 1:
                rejected.extend(ids)
                continue
            else:
                half = len(ids) // 2
                parts = [list(ids[:half]), list(ids[half:])]
            for part in parts:
                rebuilt = list(await self._build([by_id[i] for i in part]))
                covered = self._check_covered(rebuilt, set(part))
                left_out.extend(i for i in part if i not in covered)
                out.extend(await self._fitting(rebuilt, by_id, blockhash, rejected, left_out))
        return out

    def _check_covered(self, units: Sequence[Unit], claimed: set[int]) -> set[int]:
        """The intent ids ``units`` carry out; each must be one of ``claimed``, and in one unit only."""
        covered: set[int] = set()
        for u in units:
            ids = self._unit_ids(u)
            if not claimed.issuperset(ids) or covered & set(ids) or len(set(ids)) != len(ids):
                raise OutboxError(f"builder returned a unit for intents {ids} that were not claimed once")
            covered.update(ids)
        return covered

    def _fits(self, unit: Unit, blockhash: Any) -> bool:
        return fits([unit], payer=self._payer.pubkey, blockhash=blockhash, lookup_tables=self._tables,
                    trailer=self._trailer, compute_unit_price=self.config.compute_unit_price)

    def _pack(self, units: Sequence[Unit], blockhash: Any, *, solo: bool) -> list[Packed]:
        return pack(units, payer=self._payer.pubkey, blockhash=blockhash, lookup_tables=self._tables,
                    trailer=self._trailer, compute_unit_price=self.config.compute_unit_price,
                    max_units=1 if solo else self.config.max_units_per_tx)

    async def submit(self) -> tuple[int, int, int]:
        """One round: returns (intents submitted, transactions sent, intents deferred)."""
        prepared: list[_Prepared] = []
        deferred = 0
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, key, payload, attempts, solo FROM chain_intent "
                "WHERE kind = $1 AND state = 'pending' AND (not_before IS NULL OR not_before <= now()) "
                "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED", self.kind, self.config.batch_size)
            if not rows:
                return 0, 0, 0
            intents = [Intent(r["id"], r["key"], json.loads(r["payload"]), r["attempts"], r["solo"]) for r in rows]
            units = list(await self._build(intents))
            by_id = {i.id: i for i in intents}
            covered = self._check_covered(units, set(by_id))
            left_out = [i for i in by_id if i not in covered]
            too_large: list[int] = []
            latest = await self._ledger.get_latest_blockhash() if units else None
            packs = (await self._pack_isolating(units, by_id, latest.blockhash, rejected=too_large,
                                                left_out=left_out) if latest is not None else [])
            if left_out:
                deferred = len(left_out)
                await conn.execute(
                    "UPDATE chain_intent SET not_before = now() + make_interval(secs => $2), updated_at = now() "
                    "WHERE id = ANY($1::bigint[])", left_out, self.config.defer_seconds)
            if too_large:
                # Only a single intent whose unit cannot fit any transaction: it can never succeed. Fail it (admin
                # view) instead of blocking the outbox with it.
                await conn.execute(
                    "UPDATE chain_intent SET state = 'failed', last_error = $2, updated_at = now() "
                    "WHERE id = ANY($1::bigint[])", too_large, "unit does not fit in one transaction")
            if not packs or latest is None:
                return 0, 0, deferred
            for pk in packs:
                tx = sign(pk.message, self._signers)
                prepared.append(_Prepared(tx, [i for u in pk.units for i in self._unit_ids(u)]))
            sub_rows = await conn.fetch(
                "INSERT INTO chain_submission (kind, signature, last_valid_block_height, raw_tx, intent_count) "
                "SELECT $1, s, $2, r, n FROM unnest($3::text[], $4::bytea[], $5::int[]) AS t(s, r, n) "
                "RETURNING id, signature",
                self.kind, latest.last_valid_block_height,
                [str(prep.tx.signatures[0]) for prep in prepared], [bytes(prep.tx) for prep in prepared],
                [len(prep.intent_ids) for prep in prepared])
            sub_id = {r["signature"]: r["id"] for r in sub_rows}
            ids_flat: list[int] = []
            subs_flat: list[int] = []
            sigs_flat: list[str] = []
            for prep in prepared:
                sig = str(prep.tx.signatures[0])
                for i in prep.intent_ids:
                    ids_flat.append(i)
                    subs_flat.append(sub_id[sig])
                    sigs_flat.append(sig)
            await conn.execute(
                "UPDATE chain_intent AS c SET state = 'submitted', submission_id = t.sub, signature = t.sig, "
                "last_valid_block_height = $4, attempts = c.attempts + 1, not_before = NULL, updated_at = now() "
                "FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(id, sub, sig) WHERE c.id = t.id",
                ids_flat, subs_flat, sigs_flat, latest.last_valid_block_height)
        self._hook("before_send")
        for prep in prepared:
            await self._send(prep.tx)
            await asyncio.sleep(0)  # an in-process ledger executes synchronously: let other tasks run
        self._hook("after_send")
        return sum(len(prep.intent_ids) for prep in prepared), len(prepared), deferred

    @staticmethod
    def _unit_ids(unit: Unit) -> tuple[int, ...]:
        tag = unit.tag
        if isinstance(tag, int):
            return (tag,)
        if isinstance(tag, tuple) and all(isinstance(t, int) for t in tag):
            return tag
        raise OutboxError(f"unit tag must be an intent id or a tuple of intent ids, got {type(tag).__name__}")

    async def _send(self, tx: VersionedTransaction) -> None:
        try:
            await self._ledger.send_transaction(tx, skip_preflight=True)
        except LedgerError as e:
            # Not fatal: reconcile learns the outcome by signature (or expiry) and acts on it.
            log.warning("chain outbox %s: send of %s failed: %s", self.kind, tx.signatures[0], e)

    # --------------------------------------------------------------------------------------------- reconcile

    async def reconcile(self) -> StepResult:
        result = StepResult()
        rows = await self._pool.fetch(
            "SELECT id, signature, last_valid_block_height, raw_tx, intent_count, "
            "extract(epoch from now() - updated_at) AS age "
            "FROM chain_submission WHERE kind = $1 AND state = 'submitted' ORDER BY id LIMIT $2",
            self.kind, self.config.reconcile_batch)
        if not rows:
            return result
        height = await self._ledger.get_block_height()  # before the statuses: see module docstring
        statuses = await self._ledger.get_signature_statuses([Signature.from_string(r["signature"]) for r in rows])
        v = self._classify(rows, statuses, height, result)
        self._hook("before_record_status")
        await self._record(result, v)
        if v.rebroadcast:
            for _sub, raw in v.rebroadcast:
                await self._send(VersionedTransaction.from_bytes(raw))
            # Next re-broadcast of these only after another interval.
            await self._pool.execute(
                "UPDATE chain_submission SET updated_at = now() WHERE id = ANY($1::bigint[]) AND state = 'submitted'",
                [sub for sub, _raw in v.rebroadcast])
        return result

    def _classify(self, rows: Sequence[asyncpg.Record], statuses: Sequence[SignatureStatus | None], height: int,
                  result: StepResult) -> _Verdicts:
        v = _Verdicts()
        levels = FINALIZED_ONLY if self.config.require_finalized else CONFIRMED_LEVELS
        for row, st in zip(rows, statuses, strict=True):
            outcome = decide(st, height, row["last_valid_block_height"], levels)
            if outcome.verdict is Verdict.CONFIRMED and st is not None:
                v.confirmed.append((row["id"], st.slot))
            elif outcome.verdict is Verdict.FAILED and st is not None:
                target = v.failed_multi if row["intent_count"] > 1 else v.failed_solo
                target.append((row["id"], json.dumps(st.err)))
            elif outcome.verdict is Verdict.EXPIRED:
                v.expired.append(row["id"])
            else:
                result.open_submissions += 1
                if st is None and float(row["age"]) >= self.config.rebroadcast_after:
                    v.rebroadcast.append((row["id"], bytes(row["raw_tx"])))
        return v

    async def _record(self, result: StepResult, v: _Verdicts) -> None:
        confirmed, failed_multi, failed_solo, expired = v.confirmed, v.failed_multi, v.failed_solo, v.expired
        async with self._pool.acquire() as conn, conn.transaction():
            if confirmed:
                ids = [c[0] for c in confirmed]
                await conn.execute(
                    "UPDATE chain_submission AS s SET state = 'confirmed', slot = t.slot, updated_at = now() "
                    "FROM unnest($1::bigint[], $2::bigint[]) AS t(id, slot) WHERE s.id = t.id AND s.state = "
                    "'submitted'", ids, [c[1] for c in confirmed])
                status = await conn.execute(
                    "UPDATE chain_intent SET state = 'confirmed', confirmed_at = now(), updated_at = now() "
                    "WHERE submission_id = ANY($1::bigint[]) AND state = 'submitted'", ids)
                result.confirmed = _count(status)
            for (sub, err), solo in [(f, False) for f in failed_multi] + [(f, True) for f in failed_solo]:
                await conn.execute("UPDATE chain_submission SET state = 'failed', error = $2, updated_at = now() "
                                   "WHERE id = $1 AND state = 'submitted'", sub, err)
                if solo:
                    status = await conn.execute(
                        "UPDATE chain_intent SET state = 'failed', last_error = $2, updated_at = now() "
                        "WHERE submission_id = $1 AND state = 'submitted'", sub, err)
                    result.failed += _count(status)
                else:
                    status = await conn.execute(
                        "UPDATE chain_intent SET state = 'pending', solo = true, submission_id = NULL, "
                        "last_error = $2, updated_at = now() WHERE submission_id = $1 AND state = 'submitted'",
                        sub, err)
                    result.retried += _count(status)
            if expired:
                await conn.execute(
                    "UPDATE chain_submission SET state = 'expired', updated_at = now() "
                    "WHERE id = ANY($1::bigint[]) AND state = 'submitted'", expired)
                status = await conn.execute(
                    "UPDATE chain_intent SET state = 'pending', submission_id = NULL, "
                    "last_error = 'transaction expired before landing', updated_at = now() "
                    "WHERE submission_id = ANY($1::bigint[]) AND state = 'submitted'", expired)
                result.expired = _count(status)

    # --------------------------------------------------------------------------------------------- driving

    async def step(self) -> StepResult:
        """Reconcile open submissions, then submit one round of pending intents."""
        result = await self.reconcile()
        result.submitted, result.transactions, result.deferred = await self.submit()
        kind = self.kind
        for outcome in ("submitted", "confirmed", "failed", "retried", "expired"):
            n = getattr(result, outcome)
            if n:
                INTENTS.labels(kind, outcome).inc(n)
        if result.transactions:
            TRANSACTIONS.labels(kind).inc(result.transactions)
        OPEN_SUBMISSIONS.labels(kind).set(result.open_submissions)
        return result

    async def run(self, stop: asyncio.Event, *, idle_interval: float = 0.5, busy_interval: float = 0.0) -> None:
        """Drive the outbox until ``stop`` is set. Ledger outages are logged and retried."""
        while not stop.is_set():
            try:
                result = await self.step()
                delay = idle_interval if result.idle else busy_interval
            except LedgerUnavailableError as e:
                log.warning("chain outbox %s: ledger unavailable: %s", self.kind, e)
                delay = idle_interval
            except (CentralError, asyncpg.PostgresError, OSError):
                # Nothing is lost: the database transaction of the failed step rolled back; try again later.
                log.exception("chain outbox %s: step failed", self.kind)
                delay = idle_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay if delay > 0 else 0.001)

    async def drain(self, *, max_seconds: float = 60.0, poll: float = 0.01) -> StepResult:
        """Step until nothing is submitted or claimable (deferred intents wait for their time). Returns totals."""
        total = StepResult()
        deadline = time.monotonic() + max_seconds
        while True:
            r = await self.step()
            for f in ("submitted", "transactions", "confirmed", "failed", "retried", "expired", "deferred"):
                setattr(total, f, getattr(total, f) + getattr(r, f))
            open_work = await self._pool.fetchval(
                "SELECT count(*) FROM chain_intent WHERE kind = $1 AND (state = 'submitted' OR (state = 'pending' "
                "AND (not_before IS NULL OR not_before <= now())))", self.kind)
            if open_work == 0:
                return total
            if time.monotonic() > deadline:
                counts = await self.counts()
                raise OutboxError(f"chain outbox {self.kind} did not drain within {max_seconds} s: {counts}")
            if r.submitted == 0:
                await asyncio.sleep(poll)

    # --------------------------------------------------------------------------------------------- admin

    async def counts(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT state, count(*) AS n FROM chain_intent WHERE kind = $1 GROUP BY state", self.kind)
        return {r["state"]: int(r["n"]) for r in rows}

    async def get(self, key: str) -> IntentView | None:
        r = await self._pool.fetchrow(
            "SELECT key, state, payload, signature, attempts, last_error FROM chain_intent "
            "WHERE kind = $1 AND key = $2", self.kind, key)
        return _view(r) if r is not None else None

    async def problems(self, *, stuck_after_seconds: float = 300.0, limit: int = 100) -> list[IntentView]:
        """Failed intents, and intents pending or submitted for longer than ``stuck_after_seconds``."""
        rows = await self._pool.fetch(
            "SELECT key, state, payload, signature, attempts, last_error FROM chain_intent WHERE kind = $1 AND "
            "(state = 'failed' OR (state IN ('pending', 'submitted') "
            " AND updated_at < now() - make_interval(secs => $2))) ORDER BY id LIMIT $3",
            self.kind, stuck_after_seconds, limit)
        return [_view(r) for r in rows]

    async def retry_failed(self, keys: Sequence[str]) -> int:
        """Admin: put failed intents back to pending (solo). Returns how many were reset."""
        status = await self._pool.execute(
            "UPDATE chain_intent SET state = 'pending', solo = true, submission_id = NULL, not_before = NULL, "
            "updated_at = now() WHERE kind = $1 AND key = ANY($2::text[]) AND state = 'failed'", self.kind, list(keys))
        return _count(status)


def _view(r: asyncpg.Record) -> IntentView:
    return IntentView(r["key"], r["state"], json.loads(r["payload"]), r["signature"], r["attempts"], r["last_error"])


def _count(status: str) -> int:
    """Row count from an asyncpg command tag such as ``UPDATE 3``."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0
