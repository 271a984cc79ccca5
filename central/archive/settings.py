"""The ``[archive]`` config table, parsed once into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gtxconfig import Range


@dataclass(frozen=True)
class ArchiveSettings:
    #: Run the partition and archive job in this process (one leader at a time across processes).
    enabled: bool = True
    #: Directory of the archive store (object keys ``readings/<yyyy>/<mm>/<dd>/<from>-<to>.parquet`` below it; the
    #: same keys work on an S3-compatible store).
    directory: str = "var/archive"
    #: Partitions whose whole range ends more than this many days ago are archived and dropped. Must exceed
    #: ``ingest.max_age_ms`` (older readings are rejected anyway), so ingest never needs an archived range.
    after_days: Annotated[int, Range(1, 36_500)] = 90
    #: Partitions are created this many days ahead of the clock (ingest also creates a missing one on demand).
    ahead_days: Annotated[int, Range(1, 366)] = 7
    #: How often the job runs (seconds).
    interval_s: Annotated[float, Range(1, 86_400)] = 3600.0
    #: Rows per Parquet row group (bounds memory when reading a file back, and what a damaged page costs).
    row_group_rows: Annotated[int, Range(1000, 10_000_000)] = 250_000
