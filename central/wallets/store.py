"""The wallet store port and its in-memory fake (unit tests). The PostgreSQL adapter is ``pg_store``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from central.wallets.errors import NonceRejectedError, WalletTakenError


@dataclass(frozen=True, slots=True)
class LinkedWallet:
    user_id: uuid.UUID
    address: str
    linked_at: datetime


class WalletStore(Protocol):
    async def add_nonce(self, nonce: bytes, user_id: uuid.UUID, wallet: str, expires: datetime) -> None:
        """Remember an issued link nonce (single use)."""
        ...

    async def open_nonces(self, user_id: uuid.UUID, now: datetime) -> int:
        """How many unused, unexpired link nonces the user holds."""
        ...

    async def link(self, nonce: bytes, user_id: uuid.UUID, wallet: str, now: datetime) -> LinkedWallet:
        """Atomically: use the nonce (it must have been issued to this user for this wallet, be unused and
        unexpired at ``now``; else ``NonceRejectedError``) and set the user's wallet (``WalletTakenError`` if another
        user has it). Nothing changes when either check fails."""
        ...

    async def get(self, user_id: uuid.UUID) -> LinkedWallet | None: ...


@dataclass
class _Nonce:
    user_id: uuid.UUID
    wallet: str
    expires: datetime
    used: bool = False


class InMemoryWalletStore:
    """Dict-backed ``WalletStore`` with the same semantics as the PostgreSQL adapter."""

    def __init__(self) -> None:
        self._nonces: dict[bytes, _Nonce] = {}
        self._wallets: dict[uuid.UUID, LinkedWallet] = {}

    async def add_nonce(self, nonce: bytes, user_id: uuid.UUID, wallet: str, expires: datetime) -> None:
        if nonce in self._nonces:
            raise NonceRejectedError("nonce already issued")
        self._nonces[nonce] = _Nonce(user_id, wallet, expires)

    async def open_nonces(self, user_id: uuid.UUID, now: datetime) -> int:
        return sum(1 for n in self._nonces.values() if n.user_id == user_id and not n.used and n.expires > now)

    async def link(self, nonce: bytes, user_id: uuid.UUID, wallet: str, now: datetime) -> LinkedWallet:
        n = self._nonces.get(nonce)
        if n is None or n.used or n.user_id != user_id or n.wallet != wallet or n.expires <= now:
            raise NonceRejectedError("link nonce unknown, used, expired or issued for something else")
        if any(w.address == wallet and u != user_id for u, w in self._wallets.items()):
            raise WalletTakenError("wallet already linked to another account")
        n.used = True
        linked = LinkedWallet(user_id, wallet, now)
        self._wallets[user_id] = linked
        return linked

    async def get(self, user_id: uuid.UUID) -> LinkedWallet | None:
        return self._wallets.get(user_id)
