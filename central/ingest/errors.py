"""Errors raised by the ingest subsystem on purpose."""

from __future__ import annotations

from central.errors import CentralError


class IngestError(CentralError):
    """Base of ingest errors."""


class StoreError(IngestError):
    """The reading store failed (database unreachable, constraint broken by a concurrent writer)."""
