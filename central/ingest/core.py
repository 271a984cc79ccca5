"""The ingest decision, pure (no I/O): which records of a batch are stored and what the ack says.

Per record, in this order (first failure wins): decodes → device known and verified → meter bound to that device →
signature → seq not already stored (an identical record is a counted duplicate, not an error) → chain (prev_hash
equals the hash of seq-1 when central has it, and a stored seq+1 names this record as its predecessor) → timestamp
(``bad_timestamp``): not more than ``max_future_ms`` ahead of central's clock, not older than ``max_age_ms``, not
before the device's registration (less the same ``max_future_ms`` clock tolerance), and not before the timestamp of
the same meter's previous record by seq nor after that of its next stored one (a meter's readings never go back in
time) → cumulative registers not decreasing against the meter's neighbours by seq unless METER_REPLACED.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from central.ingest.model import (
    AcceptedReading,
    BatchContext,
    BatchOutcome,
    Candidate,
    ChainHead,
    ContextQuery,
    Gap,
    ParsedBatch,
)
from central.ingest.signature import signature_valid
from protocol.ack import Ack
from protocol.batch import split_batch
from protocol.errors import ProtocolError, Reason
from protocol.record import ZERO_HASH, Flags, Reading, decode_reading

MAX_FUTURE_MS = 5 * 60 * 1000
#: Readings older than this (against central's clock) are rejected: 60 days.
MAX_AGE_MS = 60 * 86_400_000
# PostgreSQL bigint holds registers and seqs; a u64 above this cannot come from a real meter.
MAX_STORED_INT = 2**63 - 1
_SEQ_OFFSET = 38  # seq starts at 38 + L in a record (protocol §1 Reading record)
_METER_REPLACED = int(Flags.METER_REPLACED)  # plain int: IntFlag arithmetic is slow on the per-record path


def _best_effort_seq(raw: bytes) -> int:
    """The seq of an undecodable record when its bytes still show one (so the ack can name it), else 0."""
    if len(raw) < _SEQ_OFFSET:
        return 0
    length = raw[37]
    end = _SEQ_OFFSET + length + 8
    if not 1 <= length <= 32 or len(raw) < end:
        return 0
    seq = int.from_bytes(raw[_SEQ_OFFSET + length : end], "little")
    return seq if 0 < seq <= MAX_STORED_INT else 0


def parse_batch(device_id: str, public_key: bytes, payload: bytes) -> ParsedBatch:
    """Split and decode a readings payload received on ``device_id``'s topic (signatures are checked later)."""
    try:
        raws = split_batch(payload)
    except ProtocolError:
        return ParsedBatch(device_id, public_key, (), framing_error=True)
    candidates: list[Candidate] = []
    last_seq = 0
    for raw in raws:
        try:
            reading = decode_reading(raw, verify=False)
        except ProtocolError as exc:
            candidates.append(Candidate(_best_effort_seq(raw), raw, None, exc.reason))
            continue
        seq = reading.seq
        if (
            reading.device_public_key != public_key  # a batch carries its own device's records only
            or seq <= last_seq  # in increasing seq order
            or max(seq, reading.import_wh, reading.export_wh) > MAX_STORED_INT
        ):
            candidates.append(Candidate(seq if seq <= MAX_STORED_INT else 0, raw, reading, Reason.MALFORMED))
            continue
        last_seq = seq
        candidates.append(Candidate(seq, raw, reading))
    return ParsedBatch(device_id, public_key, tuple(candidates))


def context_query(batch: ParsedBatch) -> ContextQuery:
    return ContextQuery(batch.device_id, batch.first_seq, batch.last_seq, batch.meter_serials)


def verify_candidate(batch: ParsedBatch, candidate: Candidate) -> bool:
    """Signature check of one decoded candidate with the fast binding."""
    reading = candidate.reading
    if reading is None:
        return False
    return signature_valid(batch.public_key, reading.signed_message(), reading.signature)


def malformed_ack() -> Ack:
    """Answer to a payload whose batch framing is invalid: nothing can be attributed to a seq."""
    return Ack(first=0, last=0, accepted=0, duplicate=0, rejected=((0, Reason.MALFORMED),))


@dataclass(slots=True)
class _Registers:
    seq: int
    import_wh: int
    export_wh: int
    replaced: bool
    timestamp_ms: int


class _MeterHistory:
    """Known readings of one meter of the device, ordered by seq, for the register monotonicity check."""

    def __init__(self, rows: Iterable[_Registers]) -> None:
        self._rows = sorted(rows, key=lambda r: r.seq)
        self._seqs = [r.seq for r in self._rows]

    def decreases(self, new: _Registers) -> bool:
        i = bisect.bisect_left(self._seqs, new.seq)
        if i > 0 and not new.replaced:
            before = self._rows[i - 1]
            if new.import_wh < before.import_wh or new.export_wh < before.export_wh:
                return True
        if i < len(self._rows):
            after = self._rows[i]
            if not after.replaced and (after.import_wh < new.import_wh or after.export_wh < new.export_wh):
                return True
        return False

    def out_of_time_order(self, new: _Registers) -> bool:
        """True when ``new`` is older than the meter's previous record by seq or newer than its next one."""
        i = bisect.bisect_left(self._seqs, new.seq)
        if i > 0 and new.timestamp_ms < self._rows[i - 1].timestamp_ms:
            return True
        return i < len(self._rows) and self._rows[i].timestamp_ms < new.timestamp_ms

    def add(self, new: _Registers) -> None:
        i = bisect.bisect_left(self._seqs, new.seq)
        self._seqs.insert(i, new.seq)
        self._rows.insert(i, new)


def _registers(seq: int, import_wh: int, export_wh: int, flags: int, timestamp_ms: int) -> _Registers:
    return _Registers(seq, import_wh, export_wh, bool(flags & _METER_REPLACED), timestamp_ms)


def _histories(ctx: BatchContext) -> dict[str, _MeterHistory]:
    rows: dict[str, list[_Registers]] = {}
    for stored in (*ctx.meter_before.values(), *ctx.stored.values(), *ctx.meter_after.values()):
        rows.setdefault(stored.meter_serial, []).append(
            _registers(stored.seq, stored.import_wh, stored.export_wh, stored.flags, stored.timestamp_ms)
        )
    return {serial: _MeterHistory(r) for serial, r in rows.items()}


def _subtract(gaps: Iterable[Gap], seqs: list[int]) -> list[Gap]:
    """Gap ranges minus the given (sorted) seqs."""
    out: list[Gap] = []
    for gap in gaps:
        lo = gap.first_seq
        i = bisect.bisect_left(seqs, gap.first_seq)
        while i < len(seqs) and seqs[i] <= gap.last_seq:
            if seqs[i] > lo:
                out.append(Gap(lo, seqs[i] - 1))
            lo = seqs[i] + 1
            i += 1
        if lo <= gap.last_seq:
            out.append(Gap(lo, gap.last_seq))
    return out


def _gap_changes(ctx: BatchContext, accepted: list[int]) -> tuple[tuple[Gap, ...], tuple[Gap, ...]]:
    """Gaps to delete and insert once ``accepted`` (sorted seqs) are stored."""
    if not accepted:
        return (), ()
    head = ctx.head.last_seq if ctx.head is not None else 0
    touched = [g for g in ctx.gaps if any(g.first_seq <= s <= g.last_seq for s in accepted)]
    candidates = list(touched)
    if accepted[-1] > head + 1:
        candidates.append(Gap(head + 1, accepted[-1] - 1))
    remaining = _subtract(candidates, accepted)
    return tuple(touched), tuple(remaining)


def evaluate(
    batch: ParsedBatch,
    ctx: BatchContext,
    *,
    now_ms: int,
    signature_ok: Callable[[Candidate], bool],
    max_future_ms: int = MAX_FUTURE_MS,
    max_age_ms: int = MAX_AGE_MS,
) -> BatchOutcome:
    """Judge every record of ``batch`` against the stored state ``ctx``."""
    if batch.framing_error:
        return BatchOutcome(ack=malformed_ack())
    device = ctx.device
    rejected: list[tuple[int, Reason]] = []
    accepted: list[AcceptedReading] = []
    duplicates = 0
    # Hashes of this device's records by seq, as far as central knows them (stored, then accepted in this batch).
    known_hash = {seq: s.record_hash for seq, s in ctx.stored.items()}
    histories = _histories(ctx)

    for cand in batch.candidates:
        reading = cand.reading
        if cand.reason is not None or reading is None:
            rejected.append((cand.seq, cand.reason or Reason.MALFORMED))
            continue
        record_hash = hashlib.sha256(cand.raw).digest()
        reason = _check(
            ctx, cand, reading, record_hash, signature_ok, (now_ms, max_future_ms, max_age_ms), known_hash, histories
        )
        if reason == "duplicate":
            duplicates += 1
            continue
        if isinstance(reason, Reason):
            rejected.append((cand.seq, reason))
            continue
        assert device is not None
        known_hash[reading.seq] = record_hash
        histories.setdefault(reading.meter_serial, _MeterHistory(())).add(
            _registers(reading.seq, reading.import_wh, reading.export_wh, reading.flags, reading.timestamp_ms)
        )
        accepted.append(AcceptedReading(reading, cand.raw, record_hash, device.meters[reading.meter_serial]))

    seqs = [a.reading.seq for a in accepted]
    new_head = None
    if accepted and (ctx.head is None or seqs[-1] > ctx.head.last_seq):
        new_head = ChainHead(seqs[-1], accepted[-1].record_hash)
    removed, added = _gap_changes(ctx, seqs)
    named = [c.seq for c in batch.candidates if c.seq > 0]
    ack = Ack(
        first=min(named, default=0),
        last=max(named, default=0),
        accepted=len(accepted),
        duplicate=duplicates,
        rejected=tuple(rejected),
    )
    return BatchOutcome(ack, tuple(accepted), new_head, removed, added)


def _check(  # noqa: PLR0911 - one return per check, in the order the protocol fixes
    ctx: BatchContext,
    cand: Candidate,
    reading: Reading,
    record_hash: bytes,
    signature_ok: Callable[[Candidate], bool],
    clock: tuple[int, int, int],
    known_hash: dict[int, bytes],
    histories: dict[str, _MeterHistory],
) -> Reason | Literal["duplicate"] | None:
    """The first failed check's reason, ``"duplicate"``, or None when the record is accepted."""
    device = ctx.device
    if device is None:
        return Reason.UNKNOWN_DEVICE
    if not device.verified:
        return Reason.DEVICE_NOT_VERIFIED
    if reading.meter_serial not in device.meters:
        return Reason.METER_NOT_BOUND
    if not signature_ok(cand):
        return Reason.BAD_SIGNATURE
    seq = reading.seq
    stored = ctx.stored.get(seq)
    if stored is not None:
        # The identical record again is a duplicate; different bytes under a stored seq fork the chain.
        return "duplicate" if stored.record_hash == record_hash else Reason.CHAIN_MISMATCH
    previous = known_hash.get(seq - 1)
    if seq == 1 and reading.prev_hash != ZERO_HASH:
        return Reason.CHAIN_MISMATCH
    if previous is not None and previous != reading.prev_hash:
        return Reason.CHAIN_MISMATCH
    successor = ctx.stored.get(seq + 1)
    if successor is not None and successor.prev_hash != record_hash:
        return Reason.CHAIN_MISMATCH
    registers = _registers(seq, reading.import_wh, reading.export_wh, reading.flags, reading.timestamp_ms)
    history = histories.get(reading.meter_serial)
    if _bad_timestamp(reading.timestamp_ms, device.registered_ms, clock) or (
        history is not None and history.out_of_time_order(registers)
    ):
        return Reason.BAD_TIMESTAMP
    if history is not None and history.decreases(registers):
        return Reason.REGISTER_DECREASE
    return None


def _bad_timestamp(ts: int, registered_ms: int, clock: tuple[int, int, int]) -> bool:
    """Too far ahead of central's clock, older than the age bound, or before the device was registered (with the
    same clock tolerance as for the future). An unset gateway clock (timestamps near 0) fails all of the last two."""
    now_ms, max_future_ms, max_age_ms = clock
    return ts > now_ms + max_future_ms or ts < now_ms - max_age_ms or ts < registered_ms - max_future_ms
