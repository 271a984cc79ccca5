"""Values the ingest core works on. Plain frozen data: the store fills them, the core reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

from protocol.ack import Ack
from protocol.errors import Reason
from protocol.record import Reading

VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A registered gateway as ingest sees it: its status, the meters bound to it (serial → meter id) and when it was
    registered (ms since the epoch; readings timestamped before it are rejected)."""

    device_id: str
    status: str
    meters: Mapping[str, UUID] = field(default_factory=dict)
    registered_ms: int = 0

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED


@dataclass(frozen=True, slots=True)
class StoredReading:
    """The parts of a stored reading the checks need."""

    seq: int
    meter_serial: str
    import_wh: int
    export_wh: int
    flags: int
    prev_hash: bytes
    record_hash: bytes
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Highest stored seq of a device and that record's hash (what a chain resync answers)."""

    last_seq: int
    last_hash: bytes


@dataclass(frozen=True, slots=True, order=True)
class Gap:
    """An inclusive range of seqs below the chain head that central has never received."""

    first_seq: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """One record of a batch after decoding. ``reason`` is set when it already failed to decode."""

    seq: int
    raw: bytes
    reading: Reading | None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """A readings payload split into candidates; ``framing_error`` when not even the batch framing was valid."""

    device_id: str
    public_key: bytes
    candidates: tuple[Candidate, ...]
    framing_error: bool = False

    @property
    def decoded(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.reading is not None and c.reason is None)

    @property
    def first_seq(self) -> int:
        seqs = [c.seq for c in self.decoded]
        return min(seqs) if seqs else 0

    @property
    def last_seq(self) -> int:
        seqs = [c.seq for c in self.decoded]
        return max(seqs) if seqs else 0

    @property
    def meter_serials(self) -> frozenset[str]:
        return frozenset(c.reading.meter_serial for c in self.decoded if c.reading is not None)


@dataclass(frozen=True, slots=True)
class ContextQuery:
    """What the store must load (under the device's lock) for the core to judge a batch."""

    device_id: str
    first_seq: int
    last_seq: int
    meter_serials: frozenset[str]


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Stored state relevant to one batch.

    ``stored``: this device's stored readings with seq in [first-1, last+1].
    ``meter_before`` / ``meter_after``: per meter serial, the stored reading of this device with the greatest seq below
    ``first`` / the smallest seq above ``last`` (register monotonicity is checked against both neighbours).
    ``gaps``: recorded gaps overlapping [first, last].
    """

    device: DeviceState | None
    stored: Mapping[int, StoredReading] = field(default_factory=dict)
    meter_before: Mapping[str, StoredReading] = field(default_factory=dict)
    meter_after: Mapping[str, StoredReading] = field(default_factory=dict)
    head: ChainHead | None = None
    gaps: tuple[Gap, ...] = ()


@dataclass(frozen=True, slots=True)
class AcceptedReading:
    """A record that passed every check, with what the store keeps besides the decoded fields."""

    reading: Reading
    raw: bytes
    record_hash: bytes
    meter_id: UUID


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The verdict on one batch: rows to store, chain head and gap changes, and the ack to publish."""

    ack: Ack
    accepted: tuple[AcceptedReading, ...] = ()
    new_head: ChainHead | None = None
    gaps_removed: tuple[Gap, ...] = ()
    gaps_added: tuple[Gap, ...] = ()

    @property
    def outcomes(self) -> dict[str, int]:
        """Record counts by outcome (``accepted``, ``duplicate`` or a rejection reason) for metrics."""
        counts: dict[str, int] = {}
        if self.ack.accepted:
            counts["accepted"] = self.ack.accepted
        if self.ack.duplicate:
            counts["duplicate"] = self.ack.duplicate
        for _seq, reason in self.ack.rejected:
            counts[str(reason)] = counts.get(str(reason), 0) + 1
        return counts
