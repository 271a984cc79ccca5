"""Ingest service: turns device→central messages (readings, sync requests, status) into store calls and answers.

Transport-free: the MQTT adapter parses topics and publishes what these methods return.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from central.ingest.committer import GroupCommitter
from central.ingest.core import (
    MAX_AGE_MS,
    MAX_FUTURE_MS,
    context_query,
    evaluate,
    malformed_ack,
    parse_batch,
    verify_candidate,
)
from central.ingest.metrics import IngestMetrics
from central.ingest.model import BatchContext, BatchOutcome, Candidate, ParsedBatch
from central.ingest.port import IngestStore, PendingBatch
from protocol.ack import Ack
from protocol.errors import ProtocolError
from protocol.keys import public_key_from_device_id
from protocol.record import ZERO_HASH
from protocol.status import DeviceStatus
from protocol.sync import SyncReply, SyncRequest


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class IngestService:
    def __init__(
        self,
        store: IngestStore,
        *,
        metrics: IngestMetrics,
        clock_ms: Callable[[], int] = wall_clock_ms,
        max_future_ms: int = MAX_FUTURE_MS,
        max_age_ms: int = MAX_AGE_MS,
        max_group: int = 32,
    ) -> None:
        self._store = store
        self._committer = GroupCommitter(store, max_group=max_group)
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._max_future_ms = max_future_ms
        self._max_age_ms = max_age_ms

    async def handle_readings(self, device_id: str, payload: bytes) -> Ack:
        """Verify and store one batch from ``device_id``'s topic; the returned ack is published to the device.

        Concurrent calls are stored together in group transactions (``GroupCommitter``).

        Raises ``StoreError`` when the store fails (then nothing is acked and the device resends).
        """
        started = time.perf_counter()
        public_key = public_key_from_device_id(device_id)
        batch = parse_batch(device_id, public_key, payload)
        if batch.framing_error:
            outcome = BatchOutcome(ack=malformed_ack())
        elif not batch.decoded:  # every record already failed to decode: nothing to look up
            outcome = evaluate(batch, BatchContext(device=None), now_ms=self._clock_ms(), signature_ok=_never)
        else:
            outcome = await self._committer.submit(PendingBatch(context_query(batch), self._decider(batch)))
        self._metrics.count_records(outcome.outcomes)
        self._metrics.count_message("readings", "malformed" if batch.framing_error else "ok")
        self._metrics.latency.observe(time.perf_counter() - started)
        return outcome.ack

    async def close(self) -> None:
        await self._committer.close()

    def _decider(self, batch: ParsedBatch) -> Callable[[BatchContext], BatchOutcome]:
        # Signatures are verified now, before the batch waits for its group and its devices' locks: it is the
        # CPU-heavy part and depends on nothing stored. The checks still report in the protocol's order (a record
        # of an unknown device is "unknown_device", not "bad_signature").
        valid = verify_until_bad(batch)

        def signature_ok(candidate: Candidate) -> bool:
            return valid[id(candidate)]

        def decide(ctx: BatchContext) -> BatchOutcome:
            return evaluate(
                batch, ctx, now_ms=self._clock_ms(), signature_ok=signature_ok, max_future_ms=self._max_future_ms,
                max_age_ms=self._max_age_ms,
            )

        return decide

    async def handle_sync(self, device_id: str, payload: bytes) -> SyncReply | None:
        """Answer a chain resync request (protocol §5 Chain resync); None for unknown devices and unparsable
        requests."""
        try:
            request = SyncRequest.from_json(payload)
        except ProtocolError:
            self._metrics.count_message("sync", "malformed")
            return None
        if not await self._store.device_known(device_id):
            self._metrics.count_message("sync", "unknown_device")
            return None
        head = await self._store.chain_head(device_id)
        self._metrics.count_message("sync", "ok")
        if head is None:
            return SyncReply(request.nonce, 0, ZERO_HASH)
        return SyncReply(request.nonce, head.last_seq, head.last_hash)

    async def handle_status(self, device_id: str, payload: bytes) -> bool | None:
        """Record the retained status message (online/offline and the gateway's health: outbox depth, meters down,
        alarms); returns the online state recorded (None if the payload is not a v1 status)."""
        try:
            status = DeviceStatus.from_json(payload)
        except ProtocolError:
            self._metrics.count_message("status", "malformed")
            return None
        await self._store.record_status(device_id, status)
        self._metrics.count_message("status", "ok")
        return status.online


def verify_until_bad(batch: ParsedBatch) -> dict[int, bool]:
    """Signature verdict per decoded candidate (by ``id``), in batch order, stopping at the first bad signature:
    a device signs every record it sends, so one forged record makes the rest of the batch untrustworthy too, and
    a batch of forgeries costs one verification instead of one per record. Later records count as bad."""
    valid: dict[int, bool] = {}
    ok = True
    for cand in batch.decoded:
        ok = ok and verify_candidate(batch, cand)
        valid[id(cand)] = ok
    return valid


def _never(_candidate: Candidate) -> bool:
    return False
