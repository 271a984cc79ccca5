"""Rate limits per route class: token buckets in each worker's memory.

Classes (:func:`route_class`): ``auth`` — the ``/api/v1/auth/...`` writes that take a secret (login, register,
password reset), keyed by client address and strict (token refreshes and log-outs are writes: ``TOKEN_ROUTES``);
``write`` — every other state-changing API call, keyed by user (by address when anonymous); ``read`` — API reads,
keyed the same way and generous. ``/healthz``, ``/readyz`` and ``/metrics`` are outside ``/api/`` and never limited.
Beyond its bucket a caller gets ``429 rate_limited`` with ``Retry-After`` (whole seconds until a token is back),
through the one error shape.

Why in process: these buckets shed load and blunt floods cheaply (no database round trip per request). The limits
that are security boundaries — failed logins per account and address, meter-claim attempts, registrations per
address and e-mail — live in PostgreSQL already and hold across every worker and node. A client spread over N
workers (SO_REUSEPORT hashes connections) and M nodes gets at most N x M times a bucket, which the configuration
states per worker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from central.config import RateClass, RateLimitConfig
from central.http.errors import ApiError
from central.http.routes import BODY_LIMIT, PRINCIPAL, Route, client_address, route_of

RouteClass = Literal["auth", "write", "read"]
_READ_METHODS = frozenset({"GET", "HEAD"})
AUTH_PREFIX = "/api/v1/auth/"


#: Auth routes that present a session's own token instead of a secret a caller could guess: renewing an access
#: token (every page load of the web app does, from its HttpOnly cookie) and ending a session. They count as writes:
#: in the strict per-address bucket, the households behind one carrier-grade NAT address would lock each other out.
TOKEN_ROUTES = frozenset({
    ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/session/refresh"),
    ("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/auth/session"),
})


def route_class(route: Route) -> RouteClass:
    """The class a declared route's requests are counted in."""
    if route.method in _READ_METHODS:
        return "read"
    if route.path.startswith(AUTH_PREFIX) and (route.method, route.path) not in TOKEN_ROUTES:
        return "auth"
    return "write"


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Token buckets of one class, keyed by caller. ``take`` returns 0 when allowed, else the seconds to wait."""

    def __init__(self, rate: RateClass, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        now = self._clock()
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self._max_keys:
                self._evict(now)
            b = self._buckets[key] = _Bucket(float(self._rate.burst), now)
        else:
            b.tokens = min(float(self._rate.burst), b.tokens + (now - b.at) * self._rate.per_s)
            b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self._rate.per_s

    def _evict(self, now: float) -> None:
        """Drop buckets that have refilled (forgetting them changes nothing), then, if still full, the oldest half."""
        full_after = self._rate.burst / self._rate.per_s
        for key in [k for k, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            oldest = sorted(self._buckets.items(), key=lambda kv: kv[1].at)[: len(self._buckets) // 2 + 1]
            for key, _ in oldest:
                del self._buckets[key]


class RateLimiter:
    """One bucket set per route class."""

    def __init__(self, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = config.enabled
        self.classes: dict[RouteClass, TokenBuckets] = {
            "auth": TokenBuckets(config.auth, config.max_keys, clock),
            "write": TokenBuckets(config.write, config.max_keys, clock),
            "read": TokenBuckets(config.read, config.max_keys, clock),
        }

    def check(self, cls: RouteClass, key: str) -> None:
        """Raise 429 when ``key`` has no token left in ``cls``."""
        wait = self.classes[cls].take(key)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited", f"too many {cls} requests; retry in {retry} s",
                           {"Retry-After": str(retry)})


RATE_LIMITER = web.AppKey("gtx.rate_limiter", RateLimiter)
AUTH_BODY_LIMIT = web.AppKey("gtx.auth_body_limit", int)

Next = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Next) -> web.StreamResponse:
    """Inside the auth middleware (the caller is known): count the request in its class, set the class's body
    limit."""
    route = route_of(request.match_info.handler)
    if route is None or not route.path.startswith("/api/"):
        return await handler(request)
    cls = route_class(route)
    if route.path.startswith(AUTH_PREFIX):
        request[BODY_LIMIT] = request.app[AUTH_BODY_LIMIT]
    limiter = request.app.get(RATE_LIMITER)
    if limiter is not None and limiter.enabled:
        principal = request.get(PRINCIPAL)
        key = f"user:{principal.user_id}" if principal is not None and cls != "auth" \
            else f"addr:{client_address(request)}"
        limiter.check(cls, key)
    return await handler(request)
