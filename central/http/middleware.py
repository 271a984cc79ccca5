"""Middlewares, outermost first: metrics + access log → errors (one JSON shape, no stack traces) → auth (bearer
token → principal; the route's declared access is enforced here, and routes without a declaration are refused)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from central.http.auth import TokenCodec, bearer_token
from central.http.errors import STATUS_CODES, ApiError, error_response, forbidden, unauthorized
from central.http.routes import PRINCIPAL, route_of
from central.observability.metrics import HTTP_ERRORS, HTTP_LATENCY

log = logging.getLogger("central.http")
access_log = logging.getLogger("central.http.access")

TOKENS = web.AppKey("gtx.tokens", TokenCodec)
#: How asyncpg's client-side encoding errors start (a bad argument, not a database-side failure).
_BAD_ARGUMENT = "invalid input for query argument"
ACCESS_LOG = web.AppKey("gtx.access_log", bool)

Next = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_label(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Next) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    finally:
        elapsed = time.perf_counter() - start
        route = _route_label(request)
        HTTP_LATENCY.labels(request.method, route, str(status)).observe(elapsed)
        if request.app.get(ACCESS_LOG, False):
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.path,  # the path only: query strings may carry tokens
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )


@web.middleware
async def error_middleware(request: web.Request, handler: Next) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.status >= 500 and exc.__cause__ is not None:  # a domain error mapped to a 500: operators see why
            log.exception("request failed", exc_info=exc.__cause__,
                      extra={"method": request.method, "route": _route_label(request)})
        HTTP_ERRORS.labels(_route_label(request), exc.code).inc()
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = STATUS_CODES.get(exc.status, "http_error")
        HTTP_ERRORS.labels(_route_label(request), code).inc()
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
        return error_response(exc.status, code, exc.reason, headers)
    except asyncpg.DataError as exc:
        if type(exc) is not asyncpg.DataError or not str(exc).startswith(_BAD_ARGUMENT):
            log.exception("unhandled error", extra={"method": request.method, "route": _route_label(request)})
            HTTP_ERRORS.labels(_route_label(request), "internal").inc()
            return error_response(500, "internal", "internal server error")
        # asyncpg could not encode a value taken from the request (an integer beyond int64 parsed from the path):
        # the client's mistake. The message names the value, which may be a secret: it is not repeated.
        log.warning("request value not storable", extra={"method": request.method, "route": _route_label(request)})
        HTTP_ERRORS.labels(_route_label(request), "invalid_input").inc()
        return error_response(400, "invalid_input", "a value in the request is out of range")
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "route": _route_label(request)})
        HTTP_ERRORS.labels(_route_label(request), "internal").inc()
        return error_response(500, "internal", "internal server error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Next) -> web.StreamResponse:
    info = request.match_info
    if info.http_exception is not None:
        raise info.http_exception
    route = route_of(info.handler)
    if route is None:
        # Every route must be declared through a RouteTable; an undeclared one is refused, never open.
        raise forbidden("route has no declared access", "undeclared_route")
    token = bearer_token(request.headers.get("Authorization"))
    if route.access.public:
        if token is not None:
            try:
                request[PRINCIPAL] = request.app[TOKENS].verify(token)
            except ApiError:
                request[PRINCIPAL] = None
        return await handler(request)
    if token is None:
        raise unauthorized()
    principal = request.app[TOKENS].verify(token)
    if not route.access.allows(principal.role):
        raise forbidden(f"role {principal.role.value} may not call {route.method} {route.path}")
    request[PRINCIPAL] = principal
    return await handler(request)
