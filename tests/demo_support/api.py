"""A thin client of central's HTTP API and of the ledger's Solana JSON-RPC (aiohttp), as a real client would use
them. Every non-2xx answer raises :class:`ApiFailure` carrying the method, path, status and central's JSON error."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp


class ApiFailure(Exception):  # noqa: N818 - reads better in the demo's output than ...Error
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.method, self.path, self.status, self.body = method, path, status, body
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")


@dataclass
class User:
    """A demo user as a client holds it: credentials, the access token, and (for owners) the wallet keypair."""

    label: str
    email: str
    password: str
    role: str
    id: str = ""
    token: str = ""


class Api:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base = base_url.rstrip("/")

    async def call(self, method: str, path: str, *, user: User | None = None, json: Any = None,
                   params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {user.token}"} if user is not None and user.token else {}
        async with self.session.request(method, self.base + path, json=json, params=params, headers=headers) as r:
            text = await r.text()
            if r.status >= 300:
                raise ApiFailure(method, path, r.status, text)
            if r.status == 204 or not text:
                return None
            return await r.json(content_type=None)

    async def get(self, path: str, user: User | None = None, **params: Any) -> Any:
        return await self.call("GET", path, user=user, params={k: v for k, v in params.items() if v is not None})

    async def text(self, path: str) -> str:
        async with self.session.get(self.base + path) as r:
            body = await r.text()
            if r.status >= 300:
                raise ApiFailure("GET", path, r.status, body)
            return body

    async def post(self, path: str, body: Any = None, user: User | None = None) -> Any:
        return await self.call("POST", path, user=user, json=body)

    async def put(self, path: str, body: Any = None, user: User | None = None) -> Any:
        return await self.call("PUT", path, user=user, json=body)


class RpcFailure(Exception):  # noqa: N818
    pass


class JsonRpc:
    """Standard Solana JSON-RPC against the embedded ledger's endpoint (what wallets and explorers would read)."""

    _ids = itertools.count(1)

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        async with self.session.post(self.url, json=body) as r:
            data = await r.json(content_type=None)
        if "error" in data:
            raise RpcFailure(f"{method}: {data['error']}")
        return data["result"]

    async def token_balance(self, account: str) -> int:
        """Base units held by a token account; 0 when the account does not exist (yet)."""
        info = await self.call("getAccountInfo", account, {"encoding": "base64"})
        if info["value"] is None:
            return 0
        result = await self.call("getTokenAccountBalance", account)
        return int(result["value"]["amount"])
