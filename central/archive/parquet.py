"""The archive file format: one Parquet file per partition range, self-describing.

Rows are the readings of the range ordered by (device, seq), one column per record field (layout below, also written
into the file's key-value metadata so the file explains itself). The signed record is rebuilt from the columns
(``protocol.record.assemble``); the device public key is the base58-decoded device id, so it is not stored.
``prev_hash`` is null when it equals the hash of the row before (same device, seq - 1, same row group), which it does
for every row but the first of each device's run and of each row group (so every row group decodes alone): 32
incompressible bytes a row saved, and the chain is then checked by the signatures themselves. Integer columns are
delta-encoded and zstd-compressed; the 64-byte signatures (incompressible) are stored plain and uncompressed, so a
damaged byte there changes exactly one record, which ``verify`` names.

Each file has a sidecar index (``<key>.index.parquet``): (meter_key, row group) pairs, so a meter's readings are read
from the row groups that hold them only.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from central.archive.errors import ArchiveFormatError
from central.archive.record import ArchivedReading
from central.archive.verify import ChainCheck, Problem, Verify
from central.ingest.signature import signature_valid
from protocol.base58 import b58decode
from protocol.errors import ProtocolError

FORMAT = "gtx-readings/1"
LAYOUT = (
    "One row per signed reading record (protocol v1 section 1), ordered by (device_key, seq). The record is "
    "b'GTXR' || 0x01 || base58decode(device_id) || len(meter_serial) || meter_serial || seq u64 || timestamp_ms i64 "
    "|| import_wh u64 || export_wh u64 || power_w i32 || flags u16 (little-endian) || prev_hash || signature; "
    "a null prev_hash is SHA-256 of the previous row's record (same device, seq - 1). The signature is Ed25519 over "
    "b'GTX/reading/v1\\x00' || the record without its signature. device_key and meter_key are the issuing "
    "database's compact keys (for its index), not part of the record."
)

SCHEMA = pa.schema([
    ("device_key", pa.int32()),
    ("device_id", pa.string()),
    ("meter_key", pa.int32()),
    ("meter_id", pa.string()),
    ("meter_serial", pa.string()),
    ("seq", pa.int64()),
    ("timestamp_ms", pa.int64()),
    ("import_wh", pa.int64()),
    ("export_wh", pa.int64()),
    ("power_w", pa.int32()),
    ("flags", pa.int32()),
    ("prev_hash", pa.binary(32)),
    ("signature", pa.binary(64)),
])
INDEX_SCHEMA = pa.schema([("meter_key", pa.int32()), ("row_group", pa.int32())])
_ZSTD = tuple(name for name in SCHEMA.names if name != "signature")
_DELTA = ("device_key", "meter_key", "seq", "timestamp_ms", "import_wh", "export_wh", "power_w", "flags")
_DICT = ["device_id", "meter_id", "meter_serial"]

Source = str | Path | BinaryIO


@dataclass(frozen=True, slots=True)
class FileInfo:
    from_ms: int
    to_ms: int
    rows: int


class ArchiveWriter:
    """Writes one archive file (and its index) row group by row group; records must come in (device_key, seq)
    order. ``digest`` is SHA-256 over the record hashes in file order: what reading the file back must reproduce."""

    def __init__(self, path: Path, index_path: Path, *, from_ms: int, to_ms: int) -> None:
        meta = {"gtx.format": FORMAT, "gtx.from_ms": str(from_ms), "gtx.to_ms": str(to_ms), "gtx.layout": LAYOUT}
        self._writer = pq.ParquetWriter(
            str(path), SCHEMA.with_metadata(meta), use_dictionary=_DICT,
            column_encoding={**dict.fromkeys(_DELTA, "DELTA_BINARY_PACKED"), "prev_hash": "PLAIN",
                             "signature": "PLAIN"},
            compression={**dict.fromkeys(_ZSTD, "ZSTD"), "signature": "NONE"},
            compression_level=dict.fromkeys(_ZSTD, 9),
            write_statistics=["device_key", "device_id", "meter_key", "seq", "timestamp_ms"],
        )
        self._index_path = index_path
        self._index: list[tuple[int, int]] = []
        self._last: tuple[int, int, bytes] | None = None
        self._hasher = hashlib.sha256()
        self.rows = 0
        self.groups = 0

    def write(self, records: Sequence[ArchivedReading]) -> None:
        """One row group."""
        if not records:
            return
        prev: list[bytes | None] = []
        if self._last is not None and (records[0].device_key, records[0].seq) <= self._last[:2]:
            raise ValueError("records must come in (device_key, seq) order")
        last: tuple[int, int, bytes] | None = None  # a row group's first row always has its prev_hash
        for r in records:
            if last is not None and (r.device_key, r.seq) <= (last[0], last[1]):
                raise ValueError("records must come in (device_key, seq) order")
            linked = last is not None and last[0] == r.device_key and last[1] == r.seq - 1 and last[2] == r.prev_hash
            prev.append(None if linked else r.prev_hash)
            digest = r.record_hash()
            self._hasher.update(digest)
            last = (r.device_key, r.seq, digest)
        self._last = last
        columns: dict[str, Any] = {
            "device_key": [r.device_key for r in records],
            "device_id": [r.device_id for r in records],
            "meter_key": [r.meter_key for r in records],
            "meter_id": [str(r.meter_id) for r in records],
            "meter_serial": [r.meter_serial for r in records],
            "seq": [r.seq for r in records],
            "timestamp_ms": [r.timestamp_ms for r in records],
            "import_wh": [r.import_wh for r in records],
            "export_wh": [r.export_wh for r in records],
            "power_w": [r.power_w for r in records],
            "flags": [r.flags for r in records],
            "prev_hash": prev,
            "signature": [r.signature for r in records],
        }
        self._writer.write_table(pa.table(columns, schema=self._writer.schema), row_group_size=len(records))
        self._index.extend((m, self.groups) for m in sorted({r.meter_key for r in records}))
        self.groups += 1
        self.rows += len(records)

    def close(self) -> str:
        """Finish both files; returns the hex digest."""
        self._writer.close()
        self._index.sort()
        index = pa.table(
            {"meter_key": [m for m, _ in self._index], "row_group": [g for _, g in self._index]}, schema=INDEX_SCHEMA
        )
        pq.write_table(index, str(self._index_path), compression="zstd")
        return self._hasher.hexdigest()


def write_file(
    records: Iterable[ArchivedReading], path: Path, index_path: Path, *, from_ms: int, to_ms: int,
    row_group_rows: int = 250_000,
) -> tuple[int, str]:
    """Write ``records`` (sorted here) as one archive file; returns (rows, digest)."""
    rows = sorted(records, key=lambda r: (r.device_key, r.seq))
    writer = ArchiveWriter(path, index_path, from_ms=from_ms, to_ms=to_ms)
    for i in range(0, len(rows), row_group_rows):
        writer.write(rows[i : i + row_group_rows])
    return writer.rows, writer.close()


class ArchiveFile:
    """An archive file opened for reading (footer parsed; row groups decoded on demand)."""

    def __init__(self, source: Source) -> None:
        try:
            self._file = pq.ParquetFile(source)
        except (pa.ArrowException, OSError) as exc:
            raise ArchiveFormatError(f"not a Parquet file: {exc}") from None
        meta = self._file.schema_arrow.metadata or {}
        if meta.get(b"gtx.format") != FORMAT.encode():
            raise ArchiveFormatError(f"not a {FORMAT} file")
        if self._file.schema_arrow.remove_metadata() != SCHEMA:
            raise ArchiveFormatError("unexpected columns")
        self.info = FileInfo(int(meta[b"gtx.from_ms"]), int(meta[b"gtx.to_ms"]), int(self._file.metadata.num_rows))
        self._keys: dict[str, bytes] = {}

    @property
    def row_groups(self) -> int:
        return int(self._file.num_row_groups)

    def describe_group(self, index: int) -> str:
        """The records a row group holds, from the footer's statistics (for naming a group that cannot be read)."""
        group = self._file.metadata.row_group(index)
        names = self._file.schema_arrow.names
        dev = group.column(names.index("device_id")).statistics
        seq = group.column(names.index("seq")).statistics
        if dev is None or seq is None or not dev.has_min_max or not seq.has_min_max:
            return f"row group {index}"
        return f"row group {index} (devices {dev.min} .. {dev.max}, seq {seq.min} .. {seq.max})"

    def read_group(self, index: int) -> pa.Table:
        try:
            return self._file.read_row_group(index)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ArchiveFormatError(f"{self.describe_group(index)} cannot be read: {exc}") from None

    def _public_key(self, device_id: str) -> bytes:
        key = self._keys.get(device_id)
        if key is None:
            try:
                key = b58decode(device_id)
            except ProtocolError:
                key = b""
            self._keys[device_id] = key
        return key

    def records(self, table: pa.Table) -> Iterator[ArchivedReading]:
        """The rows of one row group as records, null prev_hashes filled from the row before. A null with no
        predecessor row (a damaged file) gets ``b"\\xff" * 32``, so that record fails its signature check, by
        name."""
        last: tuple[str, int, bytes] | None = None
        cols = {name: table.column(name).to_pylist() for name in table.column_names}
        for i in range(table.num_rows):
            device = cols["device_id"][i]
            seq = cols["seq"][i]
            prev = cols["prev_hash"][i]
            if prev is None:
                prev = last[2] if last is not None and last[0] == device and last[1] == seq - 1 else b"\xff" * 32
            rec = ArchivedReading(
                device, self._public_key(device), uuid.UUID(cols["meter_id"][i]), cols["meter_serial"][i], seq,
                cols["timestamp_ms"][i], cols["import_wh"][i], cols["export_wh"][i], cols["power_w"][i],
                cols["flags"][i], prev, cols["signature"][i], cols["device_key"][i], cols["meter_key"][i],
            )
            last = (device, seq, rec.record_hash())
            yield rec

    def groups(self, indexes: Iterable[int] | None = None) -> Iterator[list[ArchivedReading]]:
        """Row groups as records (each row group decodes on its own)."""
        wanted = sorted(set(range(self.row_groups) if indexes is None else indexes))
        for g in wanted:
            yield list(self.records(self.read_group(g)))


def meter_groups(index: Source, meter_key: int) -> list[int]:
    """Row groups holding ``meter_key``'s readings, from a file's sidecar index."""
    table = pq.read_table(index, filters=[("meter_key", "=", meter_key)])
    return sorted(set(table.column("row_group").to_pylist()))


def read_digest(source: Source) -> tuple[int, str]:
    """(rows, digest) of a written file read back: what the writer's ``close`` returned, if the file is intact."""
    archive = ArchiveFile(source)
    hasher = hashlib.sha256()
    rows = 0
    for group in archive.groups():
        for r in group:
            hasher.update(r.record_hash())
            rows += 1
    return rows, hasher.hexdigest()


@dataclass(frozen=True, slots=True)
class VerifyReport:
    info: FileInfo | None
    records: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_file(source: Source, verify: Verify = signature_valid) -> VerifyReport:
    """Re-check every signature and chain link of an archive file; every problem names its record (or the row group
    holding it when a group cannot even be decoded)."""
    try:
        archive = ArchiveFile(source)
    except ArchiveFormatError as exc:
        return VerifyReport(None, 0, (Problem("file", str(exc)),))
    check = ChainCheck(verify)
    for g in range(archive.row_groups):
        try:
            group = list(archive.records(archive.read_group(g)))
        except (ArchiveFormatError, ValueError, TypeError, UnicodeDecodeError) as exc:
            check.problems.append(Problem(archive.describe_group(g), str(exc)))
            check.forget()
            continue
        check.feed(group)
        bad_keys = [r for r in group if not r.public_key]
        check.problems.extend(Problem(r.name, "device id is not a base58 public key") for r in bad_keys)
    if check.records != archive.info.rows:
        check.problems.append(Problem("file", f"holds {check.records} readable records of {archive.info.rows}"))
    return VerifyReport(archive.info, check.records, tuple(check.problems))
