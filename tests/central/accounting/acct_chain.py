"""Test helper: an embedded (LiteSVM) ledger set up by the ledger subsystem's own ``init_ledger`` (platform keys,
energy mint with 3 decimals, quote mint with 6)."""

from __future__ import annotations

from pathlib import Path

from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.platform import Platform, platform_from_setup
from central.ledger.setup import init_ledger


async def embedded_chain(keys_dir: Path, data_dir: Path | None = None, slot_ms: int = 20) -> Platform:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=data_dir, slot_ms=slot_ms))
    setup = await init_ledger(LedgerConfig(keys_dir=keys_dir, create_keys=True), ledger)
    return platform_from_setup(ledger, setup, embedded=True)
