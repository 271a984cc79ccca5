"""Checks of archived readings, pure: every signature, and every hash chain link the records can show.

Records are taken in file order: each device's records together, by increasing seq. A record whose predecessor (same
device, seq - 1) is present must name that predecessor's hash as its ``prev_hash``; seq 1 must name the zero hash; every
signature must verify over the rebuilt record. A changed field therefore fails the record's own signature, and (its hash
having changed) the link of its successor. Problems name the record (device id and seq).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from central.archive.record import ArchivedReading
from central.ingest.signature import signature_valid
from protocol.record import ZERO_HASH

Verify = Callable[[bytes, bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class Problem:
    record: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record}: {self.reason}"


@dataclass
class ChainCheck:
    """Checks records fed in (device, seq) order; collects the problems and counts the records."""

    verify: Verify = signature_valid
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    _last: tuple[str, int, bytes] | None = None
    _done: set[str] = field(default_factory=set)  # devices whose run has ended

    def forget(self) -> None:
        """Records were skipped (an unreadable part): the next one has no known predecessor."""
        self._last = None

    def feed(self, records: Iterable[ArchivedReading]) -> None:
        for r in records:
            self.records += 1
            raw = r.raw()
            if not self.verify(r.public_key, r.signed_message(), r.signature):
                self.problems.append(Problem(r.name, "signature does not verify"))
            last = self._last
            if last is not None and last[0] != r.device_id:
                self._done.add(last[0])
            if r.device_id in self._done or (last is not None and last[0] == r.device_id and last[1] >= r.seq):
                self.problems.append(Problem(r.name, "out of (device, seq) order or repeated"))
            if r.seq == 1 and r.prev_hash != ZERO_HASH:
                self.problems.append(Problem(r.name, "seq 1 must chain to the zero hash"))
            elif last is not None and last[0] == r.device_id and last[1] == r.seq - 1 and last[2] != r.prev_hash:
                self.problems.append(Problem(r.name, f"prev_hash does not match the hash of seq {r.seq - 1}"))
            self._last = (r.device_id, r.seq, hashlib.sha256(raw).digest())
