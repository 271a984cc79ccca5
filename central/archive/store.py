"""The archive store port and its object keys.

Keys are ``readings/<yyyy>/<mm>/<dd>/<from_ms>-<to_ms>.parquet`` (the UTC date of ``from_ms``) with a sidecar
index ``<same>.index.parquet`` (meter key -> row groups) and manifest ``<same>.json`` (range, row count, byte size,
SHA-256 of the file): flat object names, written once and never modified, so the same layout works unchanged on an
S3-compatible object store (an adapter there implements the same methods with PUT, ranged GET and a prefix LIST;
pyarrow reads Parquet from any seekable file object).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

PREFIX = "readings/"


class ArchiveStore(Protocol):
    """Blocking calls (callers run them in a thread): archive files are large and read with random access."""

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` atomically (readers never see a partial object)."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A seekable binary reader of the object (``ArchiveError`` when it is missing or unreadable)."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        ...


def object_key(from_ms: int, to_ms: int) -> str:
    day = datetime.fromtimestamp(from_ms / 1000, UTC)
    return f"{PREFIX}{day:%Y/%m/%d}/{from_ms}-{to_ms}.parquet"


def manifest_key(key: str) -> str:
    return key.removesuffix(".parquet") + ".json"


def index_key(key: str) -> str:
    return key.removesuffix(".parquet") + ".index.parquet"


@dataclass(frozen=True, slots=True)
class Manifest:
    key: str
    from_ms: int
    to_ms: int
    readings: int
    size: int
    sha256: str
    format: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()
