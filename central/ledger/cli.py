"""``gridtokenx-central ledger ...`` commands, called from ``central.cli`` (which owns argument parsing)."""

from __future__ import annotations

import asyncio
import json

from central.ledger.config import LedgerConfig
from central.ledger.setup import describe, init_ledger


def init_command(config: LedgerConfig) -> int:
    """``ledger init``: idempotent platform setup; prints the public addresses as JSON. ``config`` is
    ``config.ledger``. Raises ``CentralError`` subclasses (the CLI prints them, exit 1)."""
    setup = asyncio.run(init_ledger(config))
    print(json.dumps(describe(setup), indent=2))
    return 0
