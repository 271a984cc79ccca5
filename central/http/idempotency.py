"""Idempotency keys for state-changing requests (issue 10 D18).

A route declared with ``idempotent=True`` accepts an ``Idempotency-Key`` header (1–255 visible ASCII characters, no
spaces).
The first request with a key runs normally and its response is stored, per user, in PostgreSQL (table
``idempotency_keys``, migration 0075), so every worker and instance sees it:

- the same key, the same request (method, path and body byte for byte) from the same user → the stored response is
  replayed (same status and body, header ``Idempotent-Replayed: true``); the operation does not run again;
- the same key with a different request → 422 ``idempotency_key_reused``;
- the same key while the first request still runs → 409 ``idempotency_in_progress`` (retry later);
- 5xx and 429 answers (and failures without an answer) are not stored: the key is released and a retry runs again;
- keys expire after ``http.idempotency_ttl_s`` (default 24 h). A request that never finished (its process died)
  releases its key after :data:`ABANDONED_AFTER_S`.

Without the header a route behaves as before. Keys are scoped to the caller, so one user cannot read another's
stored response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from aiohttp import web

from central.http.errors import bad_request

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
#: A pending key older than this belongs to a request whose process died: it no longer blocks retries.
ABANDONED_AFTER_S = 300
#: Expired rows removed (at most) each time a key is taken: the table stays small without a separate job.
_PURGE_BATCH = 100


@dataclass(frozen=True)
class Stored:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Begun:
    """The outcome of taking a key: ``fresh`` (run the request), or a stored response, or a conflict."""

    fresh: bool = False
    replay: Stored | None = None
    in_progress: bool = False
    mismatch: bool = False


def parse_key(raw: str | None) -> str | None:
    """The header's value, or None when absent; a malformed one is a 400."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all("!" <= c <= "~" for c in raw):
        raise bad_request(
            f"{HEADER} must be 1..{MAX_KEY_LENGTH} visible ASCII characters without spaces", "invalid_idempotency_key"
        )
    return raw


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


class PgIdempotency:
    """The key store. ``pool`` is a getter: the pool exists only once the app has started."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], ttl_s: int) -> None:
        self._pool = pool
        self.ttl_s = ttl_s

    async def begin(self, user: UUID, key: str, fp: bytes) -> Begun:
        async with self._pool().acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE ctid IN "
                "(SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1)",
                _PURGE_BATCH,
            )
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND "
                "(expires_at < now() OR (state = 'pending' AND created_at < now() - make_interval(secs => $3)))",
                user, key, ABANDONED_AFTER_S,
            )  # fmt: skip
            inserted = await conn.fetchval(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, state, expires_at) "
                "VALUES ($1, $2, $3, 'pending', now() + make_interval(secs => $4)) "
                "ON CONFLICT (user_id, key) DO NOTHING RETURNING true",
                user, key, fp, self.ttl_s,
            )  # fmt: skip
            if inserted:
                return Begun(fresh=True)
            row = await conn.fetchrow(
                "SELECT fingerprint, state, status, content_type, body FROM idempotency_keys "
                "WHERE user_id = $1 AND key = $2",
                user, key,
            )  # fmt: skip
        if row is None:  # released between our insert and select (the first request failed): let the client retry
            return Begun(in_progress=True)
        if bytes(row["fingerprint"]) != fp:
            return Begun(mismatch=True)
        if row["state"] == "pending":
            return Begun(in_progress=True)
        return Begun(replay=Stored(int(row["status"]), row["content_type"] or "", bytes(row["body"] or b"")))

    async def finish(self, user: UUID, key: str, response: Stored) -> None:
        await self._pool().execute(
            "UPDATE idempotency_keys SET state = 'done', status = $3, content_type = $4, body = $5 "
            "WHERE user_id = $1 AND key = $2 AND state = 'pending'",
            user, key, response.status, response.content_type, response.body,
        )  # fmt: skip

    async def release(self, user: UUID, key: str) -> None:
        await self._pool().execute(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'pending'", user, key
        )


IDEMPOTENCY = web.AppKey("gtx.idempotency", PgIdempotency)


def storable(status: int) -> bool:
    """5xx and 429 answers are transient: a retry must run again."""
    return status < 500 and status != 429
