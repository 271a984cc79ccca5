"""The archive file format (pure: no database): round trips, the chain compaction, and damage named by record."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from central.archive.parquet import ArchiveFile, meter_groups, read_digest, verify_file, write_file
from central.archive.record import ArchivedReading
from protocol.keys import DeviceKey
from protocol.record import POWER_NOT_AVAILABLE, ZERO_HASH, ReadingFields, sign_reading

KEYS = [DeviceKey.from_seed(hashlib.sha256(b"archive-format-%d" % i).digest()) for i in range(3)]
METERS = [(uuid.UUID(int=i + 1), f"AF-{i}", i + 1) for i in range(4)]


def chain(device: int, meters: list[int], n: int, start_seq: int = 1, prev: bytes = ZERO_HASH,
          t0: int = 1_790_000_000_000) -> list[ArchivedReading]:
    """``n`` signed, chained records of device ``device`` cycling over ``meters``."""
    key = KEYS[device]
    out = []
    for k in range(n):
        meter_id, serial, meter_key = METERS[meters[k % len(meters)]]
        seq = start_seq + k
        r = sign_reading(key, ReadingFields(
            meter_serial=serial, seq=seq, timestamp_ms=t0 + seq * 60_000, import_wh=1000 + 7 * seq,
            export_wh=3 * seq, power_w=None if k % 3 == 0 else 100 + k, flags=0, prev_hash=prev))
        prev = r.hash()
        out.append(ArchivedReading(
            key.device_id, key.public_key, meter_id, serial, seq, r.timestamp_ms, r.import_wh, r.export_wh,
            POWER_NOT_AVAILABLE if r.power_w is None else r.power_w, r.flags, r.prev_hash, r.signature,
            device + 10, meter_key))
    return out


def write(tmp: Path, records: list[ArchivedReading], rows: int = 1000) -> tuple[Path, Path]:
    data, index = tmp / "f.parquet", tmp / "f.index.parquet"
    write_file(records, data, index, from_ms=0, to_ms=2**40, row_group_rows=rows)
    return data, index


@settings(max_examples=25, deadline=None)
@given(
    runs=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 30), st.integers(0, 5)), min_size=1, max_size=3,
                  unique_by=lambda t: t[0]),
    rows=st.integers(1000, 1003),
    data=st.data(),
)
def test_round_trip_rebuilds_every_signed_record(
    tmp_path_factory: object, runs: list[tuple[int, int, int]], rows: int, data: st.DataObject
) -> None:
    tmp = tmp_path_factory.mktemp("rt")  # type: ignore[attr-defined]
    records: list[ArchivedReading] = []
    for device, n, gap in runs:
        first = chain(device, [0, 1], n)
        records += first
        if gap:  # a gap in the device's seqs: the record after it keeps its prev_hash in the file
            records += chain(device, [2], 3, start_seq=n + gap + 1, prev=data.draw(st.binary(min_size=32, max_size=32)))
    path, index = write(tmp, records, rows)
    back = [r for group in ArchiveFile(path).groups() for r in group]
    assert sorted(back, key=lambda r: (r.device_key, r.seq)) == sorted(records, key=lambda r: (r.device_key, r.seq))
    assert read_digest(path)[0] == len(records)
    assert set(meter_groups(index, 1)) == ({0} if any(r.meter_key == 1 for r in records) else set())


def test_verify_passes_and_a_flipped_signature_bit_names_the_record(tmp_path: Path) -> None:
    records = chain(0, [0, 1, 2], 40) + chain(1, [3], 25)
    path, _ = write(tmp_path, records, rows=1000)
    report = verify_file(path)
    assert report.ok, report.problems
    assert report.records == 65
    victim = records[17]
    raw = bytearray(path.read_bytes())
    at = raw.find(victim.signature)
    assert at > 0
    assert raw.count(victim.signature) == 1  # signatures are stored plain
    raw[at + 9] ^= 0x10
    path.write_bytes(bytes(raw))
    bad = verify_file(path)
    assert not bad.ok
    assert str(bad.problems[0]) == f"{victim.device_id} seq {victim.seq}: signature does not verify"


def test_changed_registers_fail_the_record_and_break_its_successors_link(tmp_path: Path) -> None:
    records = chain(0, [0], 5)
    forged = records[2]
    records[2] = ArchivedReading(**{**{f: getattr(forged, f) for f in forged.__slots__}, "export_wh": 10**6})
    path, _ = write(tmp_path, records)
    problems = [str(p) for p in verify_file(path).problems]
    name = f"{forged.device_id} seq 3"
    assert f"{name}: signature does not verify" in problems
    # seq 4's stored prev_hash names the original seq 3, so the file keeps it and the link fails by name
    assert f"{forged.device_id} seq 4: prev_hash does not match the hash of seq 3" in problems


def test_damage_in_compressed_pages_fails_naming_the_row_group(tmp_path: Path) -> None:
    records = chain(0, [0, 1], 30)
    path, _ = write(tmp_path, records)
    raw = bytearray(path.read_bytes())
    start = raw.find(records[0].signature)
    for i in range(8, start - 8):  # everything before the signatures: header and compressed columns
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    report = verify_file(path)
    assert not report.ok
    assert "row group 0" in str(report.problems[0]) or " seq " in str(report.problems[0])


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 nothing")
    report = verify_file(path)
    assert not report.ok
    assert str(report.problems[0]).startswith("file: not a Parquet file")
