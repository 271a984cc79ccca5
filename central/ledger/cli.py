"""``gridtokenx-central ledger ...`` commands, called from ``central.cli`` (which owns argument parsing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from central.ledger.config import LedgerConfig
from central.ledger.setup import describe, init_ledger


def init_command(section: Mapping[str, Any]) -> int:
    """``ledger init``: idempotent platform setup; prints the public addresses as JSON. ``section`` is
    ``config.section("ledger")``. Raises ``CentralError`` subclasses (the CLI prints them, exit 1)."""
    setup = asyncio.run(init_ledger(LedgerConfig.from_section(section)))
    print(json.dumps(describe(setup), indent=2))
    return 0
