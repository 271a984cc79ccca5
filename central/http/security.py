"""Browser-facing hardening: security headers on every response and CORS from an allow-list.

Headers (added when the response is prepared, so error answers, pages and WebSocket upgrades get them too):
``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` (the API serves JSON, nothing may load or
frame it), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` (for
browsers without ``frame-ancestors``) and, behind TLS, ``Strict-Transport-Security``. Each is set only if the
response does not carry it already: a route that serves HTML (the docs page, the web app) sets its own
``Content-Security-Policy`` and it wins.

CORS (``http.cors_origins``, none by default): a request whose ``Origin`` is listed gets
``Access-Control-Allow-Origin: <that origin>`` with ``Access-Control-Allow-Credentials: true``; any other origin gets
no CORS header, so browsers keep the answer from the page. A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered here, before authentication: 204 with the allowed methods and headers
for a listed origin, 403 ``cors_origin_not_allowed`` otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from central.config import HttpConfig
from central.http.errors import ApiError

API_CSP = "default-src 'none'; frame-ancestors 'none'"
_METHODS = "GET, POST, PUT, DELETE"
_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key"
_EXPOSED = "Retry-After, Idempotent-Replayed"
_PREFLIGHT_MAX_AGE_S = 600

Next = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Security:
    origins: frozenset[str]
    hsts: str
    hsts_always: bool
    trust_proxy: bool

    @staticmethod
    def of(config: HttpConfig) -> Security:
        return Security(
            origins=frozenset(o.lower() for o in config.cors_origins),
            hsts=f"max-age={config.hsts_max_age_s}; includeSubDomains",
            hsts_always=config.hsts,
            trust_proxy=config.trust_forwarded_for,
        )

    def allowed(self, origin: str | None) -> bool:
        return origin is not None and origin.lower() in self.origins

    def behind_tls(self, request: web.Request) -> bool:
        if self.hsts_always or request.secure:
            return True
        if not self.trust_proxy:
            return False
        proto = request.headers.get("X-Forwarded-Proto", "")
        return proto.rsplit(",", 1)[-1].strip().lower() == "https"  # the last hop: the one our proxy wrote


SECURITY = web.AppKey("gtx.security", Security)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, whatever produced it."""
    sec = request.app[SECURITY]
    h = response.headers
    h.setdefault("Content-Security-Policy", API_CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    if sec.behind_tls(request):
        h.setdefault("Strict-Transport-Security", sec.hsts)
    if sec.origins:
        h.add("Vary", "Origin")
        origin = request.headers.get("Origin")
        if sec.allowed(origin) and origin is not None:
            h["Access-Control-Allow-Origin"] = origin
            h["Access-Control-Allow-Credentials"] = "true"
            h["Access-Control-Expose-Headers"] = _EXPOSED


@web.middleware
async def cors_middleware(request: web.Request, handler: Next) -> web.StreamResponse:
    """Answer CORS preflights before routing and authentication (browsers send them without credentials)."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return await handler(request)
    sec = request.app[SECURITY]
    if not sec.allowed(request.headers.get("Origin")):
        raise ApiError(403, "cors_origin_not_allowed", "this origin may not call the API from a browser")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": _METHODS,
        "Access-Control-Allow-Headers": _REQUEST_HEADERS,
        "Access-Control-Max-Age": str(_PREFLIGHT_MAX_AGE_S),
    })
