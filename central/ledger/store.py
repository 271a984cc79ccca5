"""The embedded ledger's on-disk log: an append-only file of checksummed frames.

Durability design (the embedded ledger runs inside central, thousands of transactions per second):
- Each landed transaction is ONE frame holding the transaction record and the post-state of every account it could
  have written, appended with a single ``os.write`` before ``send_transaction`` returns. A frame is therefore in the
  kernel before anyone learns the signature: a crash of the process (SIGKILL included) loses nothing.
- ``fsync`` is group-committed: a background thread fsyncs at most every ``fsync_interval`` seconds when something was
  written (default 0.05 s), and ``close`` fsyncs. ``fsync_interval=0`` fsyncs inside every append (slow, for a
  machine-crash-proof ledger). So a power loss can lose at most the last interval, never tear state: every frame has a
  length and a CRC32, and replay stops at (and truncates) the first incomplete or corrupt frame.
- Replay on open rebuilds the whole state; ``compact`` rewrites the log to the latest state of each account plus the
  transaction records (without their account images), atomically (write temp, fsync, rename, fsync directory).

Frame: ``u32 body length | u32 crc32(body) | body``; body = ``u8 kind | payload`` (the kinds below).
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

from central.ledger.errors import LedgerStoreError

K_ACCOUNTS = 1
K_SLOT = 2
K_TX = 3
K_BLOCKS = 4  # (slot, blockhash, time) of blocks holding transactions, written by compaction

_HEADER = struct.Struct("<II")
_TX_HEAD = struct.Struct("<Qq64sI")
_ACCOUNT_HEAD = struct.Struct("<32sQ32sBQI")
_MAX_FRAME = 64 * 1024 * 1024


@dataclass(frozen=True)
class TxFrame:
    """A transaction frame of the log (kind ``K_TX``): ``u8 kind | slot, block time, signature, tx length | tx |
    u32 meta length | meta JSON | account images``. Encoded and decoded here only (the embedded ledger writes
    and replays them)."""

    slot: int
    block_time: int
    signature: bytes
    raw_tx: bytes
    meta_json: bytes
    #: offset of the account images in the frame body
    accounts_at: int

    @staticmethod
    def encode(slot: int, block_time: int, signature: bytes, raw_tx: bytes, meta_json: bytes,
               accounts: bytes) -> bytes:
        return (bytes([K_TX]) + _TX_HEAD.pack(slot, block_time, signature, len(raw_tx)) + raw_tx
                + struct.pack("<I", len(meta_json)) + meta_json + accounts)

    @staticmethod
    def decode(body: bytes) -> TxFrame:
        slot, block_time, sig, txlen = _TX_HEAD.unpack_from(body, 1)
        pos = 1 + _TX_HEAD.size
        raw_tx = body[pos:pos + txlen]
        pos += txlen
        (mlen,) = struct.unpack_from("<I", body, pos)
        return TxFrame(slot, block_time, sig, raw_tx, body[pos + 4:pos + 4 + mlen], pos + 4 + mlen)

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads(self.meta_json)
        return meta


def encode_accounts(accounts: Iterable[tuple[Pubkey, Account | None]]) -> bytes:
    """Account images; a missing account (closed) is encoded as zero lamports, empty data, system-owned."""
    parts: list[bytes] = []
    n = 0
    for address, acc in accounts:
        n += 1
        if acc is None:
            parts.append(_ACCOUNT_HEAD.pack(bytes(address), 0, bytes(32), 0, 0, 0))
            continue
        data = acc.data
        parts.append(_ACCOUNT_HEAD.pack(bytes(address), acc.lamports, bytes(acc.owner), int(acc.executable),
                                        acc.rent_epoch, len(data)))
        parts.append(data)
    return struct.pack("<I", n) + b"".join(parts)


def decode_accounts(buf: bytes | memoryview, pos: int) -> tuple[list[tuple[Pubkey, Account]], int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    pos += 4
    out: list[tuple[Pubkey, Account]] = []
    for _ in range(n):
        addr, lamports, owner, executable, rent_epoch, dlen = _ACCOUNT_HEAD.unpack_from(buf, pos)
        pos += _ACCOUNT_HEAD.size
        data = bytes(buf[pos:pos + dlen])
        pos += dlen
        out.append((Pubkey.from_bytes(addr), Account(lamports, data, Pubkey.from_bytes(owner), bool(executable),
                                                    rent_epoch)))
    return out, pos


class LogFile:
    """Append-only frame log with group-committed fsync."""

    def __init__(self, path: Path, *, fsync_interval: float = 0.05) -> None:
        self.path = path
        self._fsync_interval = fsync_interval
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            raise LedgerStoreError(f"cannot open ledger log {path}: {e.strerror}") from None
        self._size = os.fstat(self._fd).st_size
        self._synced = self._size  # bytes known to be on stable storage
        self._dirty = False
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if fsync_interval > 0:
            self._thread = threading.Thread(target=self._fsync_loop, name="ledger-fsync", daemon=True)
            self._thread.start()

    @property
    def size(self) -> int:
        return self._size

    @property
    def synced_size(self) -> int:
        """Everything before this offset has been fsynced."""
        return self._synced

    def replay(self) -> Iterator[tuple[int, bytes]]:
        """Yield (offset, body) for every intact frame; truncate a torn or corrupt tail."""
        offset = 0
        size = self._size
        while offset + _HEADER.size <= size:
            head = os.pread(self._fd, _HEADER.size, offset)
            length, crc = _HEADER.unpack(head)
            if length == 0 or length > _MAX_FRAME or offset + _HEADER.size + length > size:
                break
            body = os.pread(self._fd, length, offset + _HEADER.size)
            if len(body) != length or zlib.crc32(body) != crc:
                break
            yield offset, body
            offset += _HEADER.size + length
        if offset < size:
            os.ftruncate(self._fd, offset)
            os.fsync(self._fd)
            self._size = offset
            self._synced = offset

    def append(self, body: bytes) -> int:
        """Append one frame (a single write); returns its offset."""
        frame = _HEADER.pack(len(body), zlib.crc32(body)) + body
        with self._lock:
            offset = self._size
            try:
                written = os.write(self._fd, frame)
            except OSError as e:
                raise LedgerStoreError(f"cannot append to ledger log {self.path}: {e.strerror}") from None
            if written != len(frame):
                raise LedgerStoreError(f"short write to ledger log {self.path}")
            self._size += len(frame)
            self._dirty = True
        if self._fsync_interval <= 0:
            self.sync()
        return offset

    def read(self, offset: int) -> bytes:
        length, _crc = _HEADER.unpack(os.pread(self._fd, _HEADER.size, offset))
        return os.pread(self._fd, length, offset + _HEADER.size)

    def sync(self) -> None:
        """fsync what was appended so far. A caller racing the background thread waits for its fsync, so on
        return everything appended before the call is on stable storage."""
        with self._sync_lock:
            with self._lock:
                dirty, self._dirty = self._dirty, False
                size = self._size
            if dirty:
                os.fsync(self._fd)
                with self._lock:
                    self._synced = max(self._synced, size)

    def _fsync_loop(self) -> None:
        while not self._stop.wait(self._fsync_interval):
            self.sync()

    def rewrite(self, bodies: Iterable[bytes]) -> list[int]:
        """Atomically replace the log by ``bodies``; returns their new offsets."""
        tmp = self.path.with_name(self.path.name + ".compact")
        offsets: list[int] = []
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            pos = 0
            for body in bodies:
                frame = _HEADER.pack(len(body), zlib.crc32(body)) + body
                os.write(fd, frame)
                offsets.append(pos)
                pos += len(frame)
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._sync_lock, self._lock:
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            self._size = pos
            self._synced = pos
            self._dirty = False
        return offsets

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sync()
        os.close(self._fd)
