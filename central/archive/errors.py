"""The archive's exceptions."""

from __future__ import annotations

from central.errors import CentralError


class ArchiveError(CentralError):
    """An archive operation failed (store unreachable, a partition could not be exported or dropped)."""


class ArchiveFormatError(ArchiveError):
    """A file is not a reading archive this code can read (not Parquet, wrong format version or columns)."""


class ArchiveMismatchError(ArchiveError):
    """A written archive did not read back as exactly the rows exported: the partition is kept."""
