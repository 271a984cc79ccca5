"""A JSON-RPC front end in its own process (the failover test's "RPC provider"): forwards every request to the
embedded ledger's endpoint ``--upstream`` and answers with its reply.

With ``--hold-after N`` it answers the first N ``sendTransaction`` requests normally and then stops answering
them: a held transaction is forwarded upstream (so it lands) or dropped, alternately, and its signature is written
to ``--log`` as ``forwarded <sig>`` / ``dropped <sig>`` — a provider whose outcome its client can never learn from
it. The test kills this process by its PID while it holds them.

    python -m tests.central.ledger.rpc_proxy_proc --upstream URL --port P [--hold-after N --log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from pathlib import Path

import aiohttp
from aiohttp import web
from solders.transaction import VersionedTransaction

from central.ledger.transaction_json import b58decode


def _signature(request: dict[str, object]) -> str:
    params = request.get("params")
    assert isinstance(params, list)
    cfg = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    raw = base64.b64decode(params[0]) if cfg.get("encoding") == "base64" else b58decode(params[0])
    return str(VersionedTransaction.from_bytes(raw).signatures[0])


def app(upstream: str, hold_after: int | None, log: Path | None) -> web.Application:
    sends = 0
    held = 0

    async def forward(session: aiohttp.ClientSession, body: bytes) -> bytes:
        async with session.post(upstream, data=body, headers={"content-type": "application/json"}) as r:
            return await r.read()

    async def handle(request: web.Request) -> web.Response:
        nonlocal sends, held
        body = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        parsed = json.loads(body)
        if isinstance(parsed, dict) and parsed.get("method") == "sendTransaction" and hold_after is not None:
            sends += 1
            if sends > hold_after:
                held += 1
                sig = _signature(parsed)
                forwarded = held % 2 == 1
                if forwarded:
                    await forward(session, body)
                assert log is not None
                with log.open("a") as f:
                    f.write(f"{'forwarded' if forwarded else 'dropped'} {sig}\n")
                await asyncio.Event().wait()  # never answers: the client learns nothing from this provider
        return web.Response(body=await forward(session, body), content_type="application/json")

    async def session_ctx(a: web.Application) -> object:
        a["session"] = aiohttp.ClientSession()
        yield
        await a["session"].close()

    application = web.Application()
    application.cleanup_ctx.append(session_ctx)  # type: ignore[arg-type]
    application.router.add_post("/", handle)
    return application


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hold-after", type=int, default=None)
    p.add_argument("--log", type=Path, default=None)
    args = p.parse_args()
    web.run_app(app(args.upstream, args.hold_after, args.log), host="127.0.0.1", port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
