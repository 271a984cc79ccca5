"""Fixtures: the same contract tests run against the embedded adapter (in-process) and the rpc adapter (solana-py
AsyncClient through the embedded ledger's JSON-RPC endpoint on a free port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import JsonRpcServer, RpcLimits, serve
from central.ledger.port import Ledger
from central.ledger.rpc import RpcLedger
from tests.central.ledger.ledger_env import LedgerEnv
from tests.central.ledger.outbox_support import apply_schema


async def _chain(kind: str, tmp_path: Path, slot_ms: int) -> AsyncIterator[LedgerEnv]:
    embedded = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "ledger", slot_ms=slot_ms))
    server: JsonRpcServer | None = None
    ledger: Ledger = embedded
    if kind == "rpc":
        # Development mode with caps far above what the contract tests fund.
        server = await serve(
            embedded,
            "127.0.0.1",
            0,
            limits=RpcLimits(airdrop=True, airdrop_max_lamports=10**16, airdrop_lamports_per_address=10**17),
        )
        ledger = RpcLedger(server.url)
    try:
        yield LedgerEnv(ledger, embedded, kind)
    finally:
        if ledger is not embedded:
            await ledger.close()
        if server is not None:
            await server.close()
        await embedded.close()


@pytest.fixture(params=["embedded", "rpc"])
async def chain(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerEnv]:
    """Slots advance only when the test says so (``chain.embedded.advance_slots``)."""
    async for c in _chain(request.param, tmp_path, slot_ms=0):
        yield c


@pytest.fixture(params=["embedded", "rpc"])
async def ticking_chain(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerEnv]:
    """Slots advance with wall time (10 ms each), as on a cluster."""
    async for c in _chain(request.param, tmp_path, slot_ms=10):
        yield c


@pytest.fixture
async def pool(empty_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The chain outbox's own schema only (0020): the outbox depends on no other subsystem's tables."""
    await apply_schema(empty_pg_dsn)
    p = await asyncpg.create_pool(empty_pg_dsn, min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()
