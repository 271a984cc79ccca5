from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import overload

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.meters.base import MeterSample
from edge.outbox import MAX_ACK_SEQS, ZERO_HASH, Outbox, OutboxError
from edge.signing import ProtocolSigner
from protocol.keys import DeviceKey
from protocol.record import decode_reading, record_hash

KEY = DeviceKey.from_seed(bytes(range(32)))
SIGNER = ProtocolSigner(KEY)


def sample(i: int) -> MeterSample:
    return MeterSample(1_700_000_000_000 + i * 60_000, 1000 + i, 500 + i, i - 5 if i % 3 else None)


def chain_of(ob: Outbox) -> list[bytes]:
    return [r for _, r in ob.fetch(0, None, 1_000_000)]


def assert_chain(records: list[bytes], first_prev: bytes = ZERO_HASH, first_seq: int = 1) -> None:
    prev = first_prev
    for i, raw in enumerate(records):
        rec = decode_reading(raw)  # verifies the signature
        assert rec.seq == first_seq + i
        assert rec.prev_hash == prev
        assert rec.device_public_key == KEY.public_key
        prev = record_hash(raw)


def test_append_commits_signed_chained_records_and_reopen_continues(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox.open(path, new_device=True)
    assert [ob.append("M1", sample(i), 0, SIGNER) for i in range(3)] == [1, 2, 3]
    ob.close()
    ob = Outbox.open(path, new_device=False)  # existing DB: no resync needed
    assert not ob.needs_sync
    assert ob.append("M2", sample(3), 1, SIGNER) == 4
    recs = chain_of(ob)
    assert_chain(recs)
    assert decode_reading(recs[3]).flags == 1
    assert decode_reading(recs[0]).power_w is None
    ob.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_ack_deletes_only_acked_and_seq_never_reused(outbox: Outbox) -> None:
    for i in range(5):
        outbox.append("M", sample(i), 0, SIGNER)
    out = outbox.apply_ack([1, 2, 3, 4, 5], {}, dead_letter_after=3, retry_after_ms=1000)
    assert out.deleted == 5
    assert outbox.stats().depth == 0
    assert outbox.append("M", sample(9), 0, SIGNER) == 6  # head kept in meta, not derived from rows
    (raw,) = chain_of(outbox)
    assert decode_reading(raw).seq == 6


def test_permanent_rejection_dead_letters_transient_is_retried_then_dead_lettered(outbox: Outbox) -> None:
    for i in range(3):
        outbox.append("M", sample(i), 0, SIGNER)
    out = outbox.apply_ack(
        [1, 2, 3], {2: "bad_timestamp", 3: "meter_not_bound"}, dead_letter_after=2, retry_after_ms=1000, now_ms=10_000
    )
    assert (out.deleted, out.dead_lettered, out.deferred) == (1, 1, 1)
    assert [d.seq for d in outbox.dead_letters()] == [2]
    assert outbox.dead_letters()[0].reason == "bad_timestamp"
    assert outbox.fetch(0, None, 10) == []  # deferred rows are not "fresh"
    assert outbox.fetch_due_retries(10_500, 10) == []
    assert [s for s, _ in outbox.fetch_due_retries(11_000, 10)] == [3]
    out = outbox.apply_ack([3], {3: "meter_not_bound"}, dead_letter_after=2, retry_after_ms=1000, now_ms=12_000)
    assert out.dead_lettered == 1
    s = outbox.stats()
    assert (s.depth, s.dead_letters) == (0, 2)


def test_lost_database_waits_unsigned_then_resyncs_in_order(tmp_path: Path) -> None:
    ob = Outbox.open(tmp_path / "o.sqlite", new_device=False)  # key existed, DB is new: state was lost
    assert ob.needs_sync
    assert ob.append("M", sample(0), 0, SIGNER) is None
    assert ob.append("M", sample(1), 0, SIGNER) is None
    assert ob.stats().pending_unsigned == 2
    assert ob.fetch(0, None, 10) == []
    head = bytes(range(32))
    assert ob.apply_sync(41, head, SIGNER) == 2
    assert not ob.needs_sync
    assert_chain(chain_of(ob), first_prev=head, first_seq=42)
    assert [decode_reading(r).timestamp_ms for r in chain_of(ob)] == [sample(0).timestamp_ms, sample(1).timestamp_ms]
    assert ob.apply_sync(99, head, SIGNER) == 0  # a second (stale) reply changes nothing
    assert ob.append("M", sample(2), 0, SIGNER) == 44
    ob.close()


def test_corrupt_database_is_moved_aside_and_resynced(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    ob = Outbox.open(path, new_device=False)
    assert ob.needs_sync
    assert any(p.name.startswith("o.sqlite.corrupt-") for p in tmp_path.iterdir())
    ob.close()


def test_an_unwritable_database_is_refused_not_moved_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A healthy outbox the service user cannot write (files left owned by root after a command run with sudo, a
    read-only state dir) is not corrupt: the daemon refuses to start with one line saying what to fix, and the file
    with its signed readings and chain head stays where it is (it used to be moved aside and the chain restarted)."""
    path = tmp_path / "o.sqlite"
    ob = Outbox.open(path, new_device=True)
    assert ob.append("M", sample(0), 0, SIGNER) == 1
    ob.close()
    before = path.read_bytes()
    real_connect = sqlite3.connect

    def read_only(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        # SQLite's own read-only handle: the genuine SQLITE_READONLY a chmod 444 / root-owned file gives
        kwargs.pop("isolation_level", None)
        return real_connect(f"file:{database}?mode=ro", *args, uri=True, isolation_level=None, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr("edge.outbox.sqlite3.connect", read_only)
    with pytest.raises(OutboxError, match=r"cannot open outbox .*o\.sqlite.*readonly.*chown"):
        Outbox.open(path, new_device=False)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    assert path.read_bytes() == before
    ob = Outbox.open(path, new_device=False)
    assert not ob.needs_sync
    assert ob.stats().last_seq == 1
    ob.close()


def test_a_truncated_database_is_moved_aside_and_resynced(tmp_path: Path) -> None:
    """Power loss mid-write on a bad SD card can leave the file cut short: that one is corrupt (kept aside, resync)."""
    path = tmp_path / "o.sqlite"
    ob = Outbox.open(path, new_device=True)
    for i in range(200):
        ob.append("M", sample(i), 0, SIGNER)
    ob.close()
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    ob = Outbox.open(path, new_device=False)
    assert ob.needs_sync
    assert any(p.name.startswith("o.sqlite.corrupt-") for p in tmp_path.iterdir())
    ob.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(st.just(("append",)), st.just(("reopen",)), st.tuples(st.just("ack"), st.integers(0, 5))),
                    max_size=25))
def test_any_interleaving_keeps_one_unbroken_chain(tmp_path_factory: pytest.TempPathFactory, ops: list[tuple]) -> None:
    path = tmp_path_factory.mktemp("ob") / "o.sqlite"
    ob = Outbox.open(path, new_device=True)
    produced: dict[int, bytes] = {}
    try:
        for op in ops:
            if op[0] == "append":
                seq = ob.append("M", sample(len(produced)), 0, SIGNER)
                assert seq == len(produced) + 1
                produced[seq] = chain_of(ob)[-1]
            elif op[0] == "reopen":
                ob.close()
                ob = Outbox.open(path, new_device=False)
            else:
                pending = [s for s, _ in ob.fetch(0, None, 100)]
                ob.apply_ack(pending[: op[1]], {}, dead_letter_after=3, retry_after_ms=1)
        remaining = dict(ob.fetch(0, None, 1000))
        for seq, raw in remaining.items():
            assert produced[seq] == raw
        assert_chain([produced[s] for s in sorted(produced)])
    finally:
        ob.close()


def test_append_many_is_one_chain_with_single_appends(outbox: Outbox) -> None:
    outbox.append("M", sample(0), 0, SIGNER)
    assert outbox.append_many([("M", sample(i), 0) for i in range(1, 4)], SIGNER) == [2, 3, 4]
    outbox.append("N", sample(4), 0, SIGNER)
    assert_chain(chain_of(outbox))


def test_compact_returns_space_after_a_drained_backlog(tmp_path: Path) -> None:
    ob = Outbox.open(tmp_path / "o.sqlite", new_device=True)
    try:
        for start in range(0, 6000, 1000):
            ob.append_many([("M", sample(i), 0) for i in range(start, start + 1000)], SIGNER)
        for first in range(1, 6001, 1000):  # one ack per published batch
            ob.apply_ack(list(range(first, first + 1000)), {}, dead_letter_after=3, retry_after_ms=1)
        ob._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = ob.size_bytes()
        assert ob.compact(min_free_pages=10, pages=100_000) > 0
        assert ob.size_bytes() < before / 2
        assert ob.compact(min_free_pages=10) == 0
        assert ob.append("M", sample(6000), 0, SIGNER) == 6001  # the chain head survives compaction
    finally:
        ob.close()


class _HugeRange(Sequence[int]):
    """seqs 1..1,000,000,000 as a forged ack claims them; reading more than a batch's worth of it is the issue 10 D3
    hang."""

    def __init__(self) -> None:
        self.reads = 0

    def __len__(self) -> int:
        return 1_000_000_000

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...
    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        if isinstance(i, slice):
            raise TypeError("apply_ack sliced the forged range")
        self.reads += 1
        if self.reads > 10_000:
            raise AssertionError("apply_ack walked a forged range of a billion seqs one by one (issue 10, D3)")
        if i >= len(self):
            raise IndexError(i)
        return i + 1


def test_apply_ack_refuses_a_huge_range_unread_and_deletes_nothing(outbox: Outbox) -> None:
    for i in range(1, 6):
        outbox.append("M", sample(i), 0, SIGNER)
    huge = _HugeRange()
    with pytest.raises(OutboxError, match="at most"):
        outbox.apply_ack(huge, {}, dead_letter_after=3, retry_after_ms=1000)
    assert huge.reads == 0
    assert outbox.stats().depth == 5


def test_apply_ack_is_one_bounded_delete_and_touches_only_the_batch(outbox: Outbox) -> None:
    seqs = outbox.append_many([("M", sample(i), 0) for i in range(1, 901)], SIGNER)
    statements: list[str] = []
    outbox._conn.set_trace_callback(statements.append)
    batch = [s for s in seqs if s != 450]  # a record in the batch's range that is not in the batch stays
    try:
        out = outbox.apply_ack(batch, {}, dead_letter_after=3, retry_after_ms=1000)
    finally:
        outbox._conn.set_trace_callback(None)
    assert out.deleted == 899
    assert [s for s in statements if s.lstrip().upper().startswith("DELETE")] == [
        next(s for s in statements if s.lstrip().upper().startswith("DELETE"))
    ]
    assert [seq for seq, _ in outbox.fetch(0, None, 10)] == [450]
    with pytest.raises(OutboxError):
        outbox.apply_ack(list(range(1, MAX_ACK_SEQS + 2)), {}, dead_letter_after=3, retry_after_ms=1000)
    assert outbox.stats().depth == 1
