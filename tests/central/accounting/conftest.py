"""Fixtures of the accounting and minting tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central.ledger.platform import Platform
from tests.central.accounting.acct_chain import embedded_chain


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[Platform]:
    """The platform on a private embedded (LiteSVM) ledger, closed afterwards."""
    c = await embedded_chain(tmp_path / "keys")
    try:
        yield c
    finally:
        await c.ledger.close()
