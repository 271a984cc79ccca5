"""The SQLite outbox: every reading is signed and committed here before anything is published.

Guarantees (WAL, ``synchronous=FULL``, one ``BEGIN IMMEDIATE`` transaction per reading):
- seq, prev_hash and the signed record are committed together; the chain head lives in ``meta`` and moves in the
  same transaction, so a kill -9 at any instant neither loses a committed reading nor reuses a seq;
- rows are deleted only when central acknowledges them; rejected rows go to ``dead_letter`` (at once for permanent
  reasons, after ``dead_letter_after`` attempts for transient ones), never silently;
- after the database was lost while the key was kept, samples wait unsigned in ``pending`` until central told us
  its chain head (protocol §5 Chain resync); then they are signed in order, in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from edge.errors import ClockBehindError, EdgeError, RegisterJumpError
from edge.meters.base import MeterSample
from protocol.batch import MAX_RECORDS
from protocol.record import Flags, ReadingFields

log = logging.getLogger(__name__)

ZERO_HASH = bytes(32)
SCHEMA_VERSION = 1
# Rejections central may lift later (device/meter registered by an installer): retried, then dead-lettered.
# An ack applies to one published batch (protocol.batch.MAX_RECORDS at most); anything larger is refused unread.
MAX_ACK_SEQS = MAX_RECORDS
TRANSIENT_REASONS = frozenset({"unknown_device", "device_not_verified", "meter_not_bound"})


# Plain DDL rather than sqlite-utils at run time: importing sqlite-utils (click, pluggy, dateutil, …) costs ~25 MB
# of RSS on the gateway. Tests and tools may use sqlite-utils to inspect the file.
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, meter_serial TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,"
    " record BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX outbox_retry ON outbox (next_attempt_ms, seq)",
    "CREATE TABLE pending (id INTEGER PRIMARY KEY AUTOINCREMENT, meter_serial TEXT NOT NULL,"
    " timestamp_ms INTEGER NOT NULL, import_wh INTEGER NOT NULL, export_wh INTEGER NOT NULL, power_w INTEGER,"
    " flags INTEGER NOT NULL)",
    "CREATE TABLE dead_letter (seq INTEGER PRIMARY KEY, meter_serial TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,"
    " record BLOB NOT NULL, reason TEXT NOT NULL, moved_ms INTEGER NOT NULL)",
)


class OutboxError(EdgeError):
    """The outbox database cannot be used (disk full, corrupt, locked)."""


@dataclass(frozen=True, slots=True)
class SignedRecord:
    data: bytes
    hash: bytes


class RecordSigner(Protocol):
    """Builds and signs one protocol v1 record (``protocol.record.sign_reading`` in production)."""

    def __call__(self, fields: ReadingFields) -> SignedRecord: ...


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int  # signed records not yet acknowledged
    oldest_timestamp_ms: int | None  # reading time of the oldest un-acknowledged record (signed or pending)
    pending_unsigned: int  # samples waiting for chain resync
    dead_letters: int
    last_seq: int
    needs_sync: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    meter_serial: str
    timestamp_ms: int
    reason: str
    moved_ms: int


@dataclass(frozen=True, slots=True)
class AckOutcome:
    deleted: int
    dead_lettered: int
    deferred: int


#: The largest step back of the gateway clock during which a meter's readings pause (time-zone/DST mistakes are at most
#: 26 h apart; RTC corrections are smaller).
MAX_STEP_BACK_MS = 26 * 3_600_000


#: The most power a meter measures unless the gateway's config says otherwise (``[poll] max_power_w``): a register's
#: rise is bounded by it over the time between two readings. 2 MW: far above a household's or a small business's
#: connection, far below what a garbled register (swapped words: ×65,536) reads as.
MAX_POWER_W = 2_000_000
#: Added to that bound: registers' resolution (a float32 register of a large total steps by several Wh).
JUMP_SLACK_WH = 1_000
#: Consecutive readings that agree with each other but not with the meter's last one, after which they are taken as
#: its registers (a real step: a meter swapped under the same serial), so a meter is never stopped for good.
JUMP_CONFIRMATIONS = 3


def _allowed_wh(max_power_w: int, since_ms: int) -> int:
    return max_power_w * max(since_ms, 0) // 3_600_000 + JUMP_SLACK_WH


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _CorruptError(sqlite3.DatabaseError):
    """The file opened but SQLite's own check of its pages failed."""


_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def _is_corrupt(e: sqlite3.DatabaseError) -> bool:
    """The file itself is damaged (not: cannot be written, is locked, the disk is full, an I/O error)."""
    code = getattr(e, "sqlite_errorcode", None)
    return isinstance(e, _CorruptError) or (code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB))


P = ParamSpec("P")
T = TypeVar("T")


def _locked(fn: Callable[Concatenate[Outbox, P], T]) -> Callable[Concatenate[Outbox, P], T]:
    """One caller at a time on the connection: the outbox thread and the event loop never interleave statements."""

    @functools.wraps(fn)
    def wrapper(self: Outbox, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper


class Outbox:
    """The outbox. Every method is synchronous and serialised by a lock; on the event loop, run the ones that write
    (and so wait for an fsync) through :meth:`call`, which runs them on the outbox's own single thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, max_power_w: int = MAX_POWER_W) -> None:
        self._conn = conn
        self.path = path
        self.max_power_w = max_power_w
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` (a method of this outbox) on the outbox thread and await its result, so that SQLite work and
        its fsync never block the event loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # ---- opening -------------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, new_device: bool, max_power_w: int = MAX_POWER_W) -> Outbox:
        """Open (creating if needed). A new database for an existing key starts in the needs-sync state. A reading
        whose registers rose faster than ``max_power_w`` since the meter's last one is refused (RegisterJumpError)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists() and path.stat().st_size > 0
        conn: sqlite3.Connection | None = None
        try:
            conn = cls._connect(path)
            ob = cls(conn, path, max_power_w=max_power_w)
            ob._init_schema(needs_sync=not existed and not new_device)
        except sqlite3.DatabaseError as e:
            if not existed:
                raise OutboxError(f"cannot create outbox {path}: {e}") from None
            if conn is not None:
                conn.close()
            if not _is_corrupt(e):
                # Unwritable (files left owned by root by a command run with sudo, a read-only file system), disk
                # full, locked, I/O error: the file may be perfectly good and holds signed readings. Never move it
                # aside for that; stop with one line telling the technician what to fix.
                raise OutboxError(
                    f"cannot open outbox {path}: {e} (the file was left as it is; make {path.parent} and the files "
                    f"in it writable by the service user, e.g. chown -R gridtokenx-edge: {path.parent}; check the "
                    "disk is mounted read-write and not full; then start again)"
                ) from None
            # A corrupt file must not stop the device for good: keep it aside for forensics, start over, resync.
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            log.error("outbox database unusable, moved aside", extra={"path": str(path), "aside": str(aside)})  # noqa: TRY400
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").rename(f"{aside}{suffix}")
            conn = cls._connect(path)
            ob = cls(conn, path, max_power_w=max_power_w)
            ob._init_schema(needs_sync=True)
        return ob

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            Outbox._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _prepare(conn: sqlite3.Connection) -> None:
        # Takes effect only for a new file (before the first table); lets compact() hand freed pages back to the
        # file system after a large backlog was drained, without a full VACUUM (SD-card friendly).
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        quick = conn.execute("PRAGMA quick_check").fetchone()
        if quick is None or quick[0] != "ok":
            raise _CorruptError(f"quick_check failed: {quick}")

    def _init_schema(self, *, needs_sync: bool) -> None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
                for stmt in SCHEMA:
                    c.execute(stmt)
                self._set("schema", str(SCHEMA_VERSION))
                self._set("last_seq", "0")
                self._set("last_hash", ZERO_HASH.hex())
                self._set("needs_sync", "1" if needs_sync else "0")
                self._set("created_ms", str(_now_ms()))
        if self._get("schema") != str(SCHEMA_VERSION):
            raise OutboxError(f"outbox {self.path} has schema {self._get('schema')}, expected {SCHEMA_VERSION}")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            self._conn.close()

    # ---- helpers -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise OutboxError(f"outbox busy or unwritable: {e}") from None
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as e:  # disk full at commit: nothing of this transaction exists
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise OutboxError(f"outbox commit failed: {e}") from None

    def _get(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @_locked
    def get_meta(self, key: str) -> str | None:
        return self._get(key)

    @_locked
    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._set(key, value)

    # ---- chain ---------------------------------------------------------------------------------------------------

    @property
    def needs_sync(self) -> bool:
        with self._lock:
            return self._get("needs_sync") == "1"

    @_locked
    def chain_head(self) -> tuple[int, bytes]:
        return int(self._get("last_seq") or 0), bytes.fromhex(self._get("last_hash") or ZERO_HASH.hex())

    def _sign_into(
        self, signer: RecordSigner, serial: str, ts: int, imp: int, exp: int, pw: int | None, flags: int
    ) -> int:
        last_seq, last_hash = self.chain_head()
        seq = last_seq + 1
        rec = signer(
            ReadingFields(
                meter_serial=serial, seq=seq, timestamp_ms=ts, import_wh=imp, export_wh=exp, power_w=pw, flags=flags,
                prev_hash=last_hash,
            )
        )
        self._conn.execute(
            "INSERT INTO outbox(seq, meter_serial, timestamp_ms, record) VALUES (?, ?, ?, ?)",
            (seq, serial, ts, rec.data),
        )
        self._set("last_seq", str(seq))
        self._set("last_hash", rec.hash.hex())
        return seq

    def _check_step(self, serial: str, sample: MeterSample) -> RegisterJumpError | int:
        """Check a reading against the meter's last stored one (time and registers, one meta row per meter) and
        remember it (in the caller's transaction).

        - Raise ClockBehindError for one older than the last (the gateway clock went back: central rejects those for
          good). A step back of more than MAX_STEP_BACK_MS means the last time was itself nonsense (a clock set years
          ahead, which central refused as from the future): it is forgotten, so such a clock cannot stop the meter's
          readings for years.
        - Return the RegisterJumpError of one whose registers fell, or rose more than ``max_power_w`` allows (the
          refused run is counted: commit it). JUMP_CONFIRMATIONS refused readings in a row that are plausible after
          one another are a real step (a meter swapped under the same serial, its registers restarted): the last of
          them is taken, with METER_REPLACED, so central accepts it and counts no energy for the step.
        - Else return the flags to add (0, or METER_REPLACED for a step taken)."""
        key, new = f"last:{serial}", (sample.timestamp_ms, sample.import_wh, sample.export_wh)
        text = self._get(key)
        added = 0
        if text is not None:
            last = tuple(int(v) for v in text.split(","))
            if last[0] - MAX_STEP_BACK_MS <= new[0] < last[0]:
                raise ClockBehindError(serial, last[0], new[0])
            jump = _jump(self.max_power_w, serial, last, new)
            if jump is not None:
                run_key = f"jump_run:{serial}"
                run = self._get(run_key)
                count, *prev = (int(v) for v in run.split(",")) if run else (0,)
                count = count + 1 if prev and _jump(self.max_power_w, serial, tuple(prev), new) is None else 1
                if count < JUMP_CONFIRMATIONS:
                    self._set(run_key, ",".join(str(v) for v in (count, *new)))
                    return jump
                added = int(Flags.METER_REPLACED)
            self._conn.execute("DELETE FROM meta WHERE key = ?", (f"jump_run:{serial}",))
        self._set(key, ",".join(str(v) for v in new))
        return added

    @_locked
    def append(self, serial: str, sample: MeterSample, flags: int, signer: RecordSigner) -> int | None:
        """Commit one reading. Returns its seq, or ``None`` if it waits unsigned for chain resync. Raises
        ClockBehindError or RegisterJumpError (nothing stored) for a reading central would reject for good or that
        no meter can produce."""
        try:
            with self._tx():
                jump = self._check_step(serial, sample)
                if not isinstance(jump, RegisterJumpError):
                    flags |= jump
                    if self.needs_sync:
                        self._conn.execute(
                            "INSERT INTO pending(meter_serial, timestamp_ms, import_wh, export_wh, power_w, flags)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (serial, sample.timestamp_ms, sample.import_wh, sample.export_wh, sample.power_w, flags),
                        )
                        return None
                    return self._sign_into(
                        signer, serial, sample.timestamp_ms, sample.import_wh, sample.export_wh, sample.power_w, flags
                    )
        except sqlite3.Error as e:
            raise OutboxError(f"cannot store reading of {serial}: {e}") from None
        raise jump  # committed: only the count of this meter's refused readings in a row

    @_locked
    def append_many(self, items: Sequence[tuple[str, MeterSample, int]], signer: RecordSigner) -> list[int]:
        """Commit several readings in one transaction (one fsync: kinder to SD cards). Returns their seqs."""
        if self.needs_sync:
            for serial, sample, flags in items:
                self.append(serial, sample, flags, signer)
            return []
        try:
            with self._tx():
                seqs = []
                for serial, s, flags in items:
                    jump = self._check_step(serial, s)
                    if isinstance(jump, RegisterJumpError):
                        raise jump  # the whole batch is rolled back
                    seqs.append(self._sign_into(
                        signer, serial, s.timestamp_ms, s.import_wh, s.export_wh, s.power_w, flags | jump
                    ))
                return seqs
        except sqlite3.Error as e:
            raise OutboxError(f"cannot store readings: {e}") from None

    @_locked
    def apply_sync(self, last_seq: int, last_hash: bytes, signer: RecordSigner) -> int:
        """Adopt central's chain head and sign every pending sample after it. Returns how many were signed."""
        if last_seq < 0 or len(last_hash) != 32:
            raise OutboxError("invalid sync reply")
        with self._tx():
            if not self.needs_sync:
                return 0
            local_seq, _ = self.chain_head()
            # Never go backwards over seqs this database already used (they may be in flight).
            if local_seq > last_seq:
                raise OutboxError(f"central's chain head {last_seq} is behind this outbox's {local_seq}")
            self._set("last_seq", str(last_seq))
            self._set("last_hash", last_hash.hex())
            rows = self._conn.execute(
                "SELECT id, meter_serial, timestamp_ms, import_wh, export_wh, power_w, flags FROM pending ORDER BY id"
            ).fetchall()
            for _id, serial, ts, imp, exp, pw, flags in rows:
                self._sign_into(signer, serial, ts, imp, exp, pw, flags)
            self._conn.execute("DELETE FROM pending")
            self._set("needs_sync", "0")
            return len(rows)

    # ---- publishing ----------------------------------------------------------------------------------------------

    @_locked
    def fetch(self, from_seq: int, below_seq: int | None, limit: int) -> list[tuple[int, bytes]]:
        """Fresh (never rejected) records with ``from_seq <= seq < below_seq``, oldest first."""
        hi = below_seq if below_seq is not None else 2**63 - 1
        rows = self._conn.execute(
            "SELECT seq, record FROM outbox WHERE next_attempt_ms = 0 AND seq >= ? AND seq < ? ORDER BY seq LIMIT ?",
            (from_seq, hi, limit),
        ).fetchall()
        return [(int(s), bytes(r)) for s, r in rows]

    @_locked
    def fetch_due_retries(self, now_ms: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._conn.execute(
            "SELECT seq, record FROM outbox WHERE next_attempt_ms > 0 AND next_attempt_ms <= ? ORDER BY seq LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [(int(s), bytes(r)) for s, r in rows]

    @_locked
    def apply_ack(
        self,
        seqs: Sequence[int],
        rejected: dict[int, str],
        *,
        dead_letter_after: int,
        retry_after_ms: int,
        now_ms: int | None = None,
    ) -> AckOutcome:
        """Apply central's ack to the batch in flight: delete its accepted/duplicate ``seqs``; move rejected ones
        to dead letters or defer them (transient).

        ``seqs`` must be the batch actually published (at most ``MAX_ACK_SEQS`` records); nothing outside it is
        touched and no count from the ack is trusted (issue 10, D3). The work is a bounded number of statements
        whatever the ack says: one ``DELETE`` for the accepted records, one row per rejected record of the batch.
        """
        if len(seqs) > MAX_ACK_SEQS:
            raise OutboxError(f"an ack covers at most {MAX_ACK_SEQS} records of one batch, got {len(seqs)}")
        batch = sorted({int(s) for s in seqs})
        if not batch:
            return AckOutcome(0, 0, 0)
        now = _now_ms() if now_ms is None else now_ms
        members = set(batch)
        rejects = {seq: reason for seq, reason in rejected.items() if seq in members}
        accepted = [seq for seq in batch if seq not in rejects]
        deleted = dead = deferred = 0
        with self._tx() as c:
            if accepted:
                # One statement, bounded by the batch's own range and members.
                deleted = c.execute(
                    "DELETE FROM outbox WHERE seq BETWEEN ? AND ? AND seq IN (SELECT value FROM json_each(?))",
                    (accepted[0], accepted[-1], json.dumps(accepted)),
                ).rowcount
            for seq in sorted(rejects):
                reason = rejects[seq]
                row = c.execute(
                    "SELECT meter_serial, timestamp_ms, record, attempts FROM outbox WHERE seq = ?", (seq,)
                ).fetchone()
                if row is None:
                    continue
                serial, ts, record, attempts = row
                attempts += 1
                if reason in TRANSIENT_REASONS and attempts < dead_letter_after:
                    c.execute(
                        "UPDATE outbox SET attempts = ?, next_attempt_ms = ? WHERE seq = ?",
                        (attempts, now + retry_after_ms * min(2 ** (attempts - 1), 64), seq),
                    )
                    deferred += 1
                    continue
                c.execute(
                    "INSERT OR REPLACE INTO dead_letter(seq, meter_serial, timestamp_ms, record, reason, moved_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (seq, serial, ts, record, reason, now),
                )
                c.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                dead += 1
        return AckOutcome(deleted, dead, deferred)

    # ---- status --------------------------------------------------------------------------------------------------

    @_locked
    def stats(self) -> OutboxStats:
        depth, oldest = self._conn.execute("SELECT COUNT(*), MIN(timestamp_ms) FROM outbox").fetchone()
        pend, oldest_p = self._conn.execute("SELECT COUNT(*), MIN(timestamp_ms) FROM pending").fetchone()
        (dead,) = self._conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
        candidates = [x for x in (oldest, oldest_p) if x is not None]
        last_seq, _ = self.chain_head()
        return OutboxStats(
            depth=int(depth),
            oldest_timestamp_ms=min(candidates) if candidates else None,
            pending_unsigned=int(pend),
            dead_letters=int(dead),
            last_seq=last_seq,
            needs_sync=self.needs_sync,
        )

    @_locked
    def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        rows = self._conn.execute(
            "SELECT seq, meter_serial, timestamp_ms, reason, moved_ms FROM dead_letter ORDER BY seq DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeadLetter(int(a), str(b), int(c), str(d), int(e)) for a, b, c, d, e in rows]

    @_locked
    def compact(self, min_free_pages: int = 2048, pages: int = 1024) -> int:
        """Return up to ``pages`` free pages to the file system once at least ``min_free_pages`` are free.

        Called periodically; a no-op on a healthy outbox. Returns the number of pages freed."""
        (free,) = self._conn.execute("PRAGMA freelist_count").fetchone()
        if int(free) < min_free_pages:
            return 0
        # executescript runs the pragma to completion (execute() would free a single page per call); the connection
        # is in autocommit mode, so its implicit COMMIT is a no-op.
        self._conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        (after,) = self._conn.execute("PRAGMA freelist_count").fetchone()
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(free) - int(after)

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total


def _jump(
    max_power_w: int, serial: str, last: tuple[int, ...], new: tuple[int, int, int]
) -> RegisterJumpError | None:
    """The error for ``new`` (timestamp, import, export) falling below ``last`` or rising more than ``max_power_w``
    allows since it, or None."""
    allowed = _allowed_wh(max_power_w, new[0] - last[0])
    for name, before, after in (("import", last[1], new[1]), ("export", last[2], new[2])):
        if not 0 <= after - before <= allowed:
            return RegisterJumpError(serial, name, after - before, allowed)
    return None
