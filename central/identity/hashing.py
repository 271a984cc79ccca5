"""Password / meter-key hashing (bcrypt, in a worker thread so the event loop keeps serving) and opaque tokens
(random, stored only as SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import bcrypt

#: Meter keys issued by the utility are always hashed with this cost (docs/decisions/0006-ownership-proven-twice.md).
METER_KEY_COST = 12
#: bcrypt only reads the first 72 bytes; longer secrets are pre-hashed so no byte is ignored.
_BCRYPT_MAX = 72


def _material(secret: str) -> bytes:
    raw = secret.encode()
    if len(raw) > _BCRYPT_MAX:
        raw = hashlib.sha256(raw).hexdigest().encode()
    return raw


def hash_secret_sync(secret: str, cost: int) -> str:
    return bcrypt.hashpw(_material(secret), bcrypt.gensalt(rounds=cost)).decode()


def check_secret_sync(secret: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_material(secret), hashed.encode())
    except ValueError:
        return False


async def hash_secret(secret: str, cost: int) -> str:
    return await asyncio.to_thread(hash_secret_sync, secret, cost)


async def check_secret(secret: str, hashed: str) -> bool:
    return await asyncio.to_thread(check_secret_sync, secret, hashed)


_DUMMY: dict[int, str] = {}


async def burn_check(secret: str, cost: int) -> None:
    """Spend the same time as :func:`check_secret` against a hash of ``cost`` (for unknown accounts / serials,
    so response time does not reveal whether they exist)."""
    if cost not in _DUMMY:
        _DUMMY[cost] = await hash_secret(secrets.token_hex(8), cost)
    await check_secret(secret, _DUMMY[cost])


def new_token() -> str:
    """A fresh opaque token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
