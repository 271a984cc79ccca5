"""Our DLMS invocation (frame) counters, one per meter, kept in the gateway's state directory (SQLite).

A counter value used twice with the same key breaks AES-GCM and is refused by the meter, so a value is durable
before it is used: the store reserves a block of values (``block`` at a time, committed with ``synchronous=FULL``)
and hands them out from memory; after a crash or restart the next value starts above the last reserved block, so
a counter is never reused (some are skipped, which meters accept). The DLMS bus calls
:meth:`FrameCounterStore.ensure` on a worker thread before each session, so the commit and its fsync never block the
event loop. ``resync`` moves a meter's counter up to what
the meter expects (read from its frame-counter object) when it rejected ours; a counter never moves down.

The same file keeps the last invocation counter of each pushing meter whose notification was taken
(:meth:`FrameCounterStore.peer_counter`), with a digest naming the keys it was seen under: a notification recorded
before a restart and sent again afterwards is still a replay. New keys (which restart the meter's counter) start it
over.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edge.errors import EdgeError

DEFAULT_BLOCK = 256
MAX_COUNTER = 0xFFFFFFFF
FILE_NAME = "dlms-frame-counters.sqlite"


class FrameCounterError(EdgeError):
    """The counter store cannot be used, or a meter's counter is exhausted (the meter needs new keys)."""


class FrameCounterStore:
    """All meters' counters in one small database; thread-safe; every reservation is an fsynced transaction."""

    def __init__(self, path: Path, *, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ValueError("block must be positive")
        self.path, self.block = path, block
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA cache_size=-64")  # one row per meter: 64 KiB of page cache is plenty
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS frame_counter (meter TEXT PRIMARY KEY, reserved INTEGER NOT NULL)"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS peer_counter"
                " (meter TEXT PRIMARY KEY, key_id TEXT NOT NULL, last INTEGER NOT NULL)"
            )
        except sqlite3.Error as e:
            raise FrameCounterError(f"cannot open frame-counter store {path}: {e}") from None
        self._next: dict[str, int] = {}
        self._limit: dict[str, int] = {}

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> FrameCounterStore:
        return cls(state_dir / FILE_NAME)

    def _reserved(self, meter: str) -> int:
        row = self._conn.execute("SELECT reserved FROM frame_counter WHERE meter = ?", (meter,)).fetchone()
        return int(row[0]) if row else 1  # counters start at 1

    def _reserve(self, meter: str, start: int, count: int = 0) -> None:
        """Durably reserve [start, start + max(block, count)) for ``meter`` (from the stored limit on, when that is
        higher: a value below it may have been used before a crash)."""
        size = max(self.block, count)
        limit = min(start + size, MAX_COUNTER + 1)
        if start > MAX_COUNTER:
            raise FrameCounterError(f"meter {meter}: invocation counter exhausted; the meter needs new keys")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            stored = self._reserved(meter)
            start = max(start, stored)
            limit = max(limit, min(start + size, MAX_COUNTER + 1))
            self._conn.execute(
                "INSERT INTO frame_counter (meter, reserved) VALUES (?, ?) "
                "ON CONFLICT (meter) DO UPDATE SET reserved = excluded.reserved",
                (meter, limit),
            )
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise FrameCounterError(f"cannot store the frame counter of meter {meter}: {e}") from None
        self._next[meter], self._limit[meter] = start, limit

    def next_counter(self, meter: str) -> int:
        """The next unused counter of ``meter`` (stored before it is returned)."""
        with self._lock:
            if meter not in self._next:
                self._reserve(meter, self._reserved(meter))
            if self._next[meter] >= self._limit[meter]:
                self._reserve(meter, self._limit[meter])
            value = self._next[meter]
            self._next[meter] = value + 1
            return value

    def ensure(self, meter: str, count: int) -> None:
        """Have at least ``count`` counters of ``meter`` reserved in memory, so that the next ``count`` calls of
        :meth:`next_counter` do not touch the disk (call it off the event loop before a session)."""
        with self._lock:
            if meter not in self._next:
                self._reserve(meter, self._reserved(meter), count)
            elif self._limit[meter] - self._next[meter] < count:
                # Extend the reservation from its end. When nobody else (a `read --meter` beside the daemon)
                # reserved meanwhile, the new block follows ours and our unused counters stay usable.
                old_next, old_limit = self._next[meter], self._limit[meter]
                self._reserve(meter, old_limit, count)
                if self._next[meter] == old_limit:
                    self._next[meter] = old_next

    def resync(self, meter: str, expected: int) -> None:
        """The meter accepts counters from ``expected`` on: move ours up to it (never down)."""
        with self._lock:
            current = self._next.get(meter, self._reserved(meter))
            if expected > current or meter not in self._next:
                self._reserve(meter, max(expected, current))

    def peek(self, meter: str) -> int:
        """The next counter that would be used (for tests and the status page; no reservation)."""
        with self._lock:
            return self._next.get(meter, self._reserved(meter))

    def peer_counter(self, meter: str, key_id: str) -> int:
        """The last invocation counter of ``meter``'s pushes taken under the keys named ``key_id``; -1 when none."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT last FROM peer_counter WHERE meter = ? AND key_id = ?", (meter, key_id)
                ).fetchone()
            except sqlite3.Error as e:
                raise FrameCounterError(f"cannot read the push counter of meter {meter}: {e}") from None
            return int(row[0]) if row else -1

    def save_peer_counter(self, meter: str, key_id: str, counter: int) -> None:
        """Durably remember that ``meter``'s push ``counter`` was taken (never lowered under the same keys)."""
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO peer_counter (meter, key_id, last) VALUES (?, ?, ?) ON CONFLICT (meter) DO UPDATE"
                    " SET key_id = excluded.key_id, last = excluded.last"
                    " WHERE peer_counter.key_id <> excluded.key_id OR peer_counter.last < excluded.last",
                    (meter, key_id, counter),
                )
            except sqlite3.Error as e:
                raise FrameCounterError(f"cannot store the push counter of meter {meter}: {e}") from None

    def for_meter(self, meter: str) -> MeterCounters:
        return MeterCounters(self, meter)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class MeterCounters:
    """One meter's view of the store: the ``CounterSource`` the DLMS client draws from."""

    def __init__(self, store: FrameCounterStore, meter: str) -> None:
        self._store, self.meter = store, meter

    def next_counter(self) -> int:
        return self._store.next_counter(self.meter)

    def ensure(self, count: int) -> None:
        self._store.ensure(self.meter, count)

    def resync(self, expected: int) -> None:
        self._store.resync(self.meter, expected)
