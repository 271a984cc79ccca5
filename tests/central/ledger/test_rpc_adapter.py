"""The rpc adapter translates transport failures and non-Solana answers into ``LedgerUnavailableError``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from solders.keypair import Keypair

from central.ledger.errors import LedgerUnavailableError
from central.ledger.rpc import RpcLedger


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_nothing_listening() -> None:
    ledger = RpcLedger(f"http://127.0.0.1:{_free_port()}", timeout=2)
    try:
        with pytest.raises(LedgerUnavailableError):
            await ledger.get_latest_blockhash()
        with pytest.raises(LedgerUnavailableError):
            await ledger.get_balance(Keypair().pubkey())
    finally:
        await ledger.close()


@pytest.fixture
async def garbage_url() -> AsyncIterator[str]:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(text="<html>not a node</html>", content_type="text/html")

    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=502, text="bad gateway")

    app = web.Application()
    app.router.add_post("/", handle)
    app.router.add_post("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_not_a_solana_node(garbage_url: str) -> None:
    for url in (garbage_url, garbage_url + "/broken"):
        ledger = RpcLedger(url, timeout=2)
        try:
            with pytest.raises(LedgerUnavailableError):
                await ledger.get_slot()
        finally:
            await ledger.close()
