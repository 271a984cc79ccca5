"""The one error shape every HTTP response uses: ``{"error": {"code": "...", "message": "..."}}``, and the one way
domain errors become it.

Services raise their package's domain errors (one tree per package, rooted in ``central.errors.CentralError``) and
know nothing of HTTP. Each subsystem declares, next to its routes, an :data:`ErrorMap` from its exception classes to
an :class:`ErrorRule` (status, code) and hands it to its ``RouteTable``; the route adapter
(:func:`central.http.routes.aiohttp_handler`) translates whatever a handler lets escape with :func:`map_error`. The
exception's text is the message (domain errors never carry secrets), unless the rule fixes one.

Handlers raise :class:`ApiError` (or a helper below) only for HTTP-level refusals of their own (a malformed path
parameter, an unsupported combination of query parameters); the error middleware renders it. Anything else that
escapes a handler becomes ``500 {"error": {"code": "internal", ...}}`` with the traceback logged server-side only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from central.errors import CentralError


class ApiError(CentralError):
    """An error meant for the client: HTTP status, stable machine code, human message, optional headers."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="gridtokenx"'}


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def unauthorized(message: str = "authentication required", code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, _WWW_AUTHENTICATE)


def forbidden(message: str = "your role may not do this", code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def not_found(message: str = "not found", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


@dataclass(frozen=True)
class ErrorRule:
    """How one domain exception class (and its subclasses without a rule of their own) answers over HTTP."""

    status: int
    code: str
    #: The client's message when the exception's own text is not for it; empty: ``str(exc)``.
    message: str = ""
    #: ``Retry-After`` (seconds) for an exception that carries no ``retry_after_s`` of its own.
    retry_after_s: int | None = None


#: A subsystem's declared translation of its exception tree to HTTP.
ErrorMap = Mapping[type[BaseException], ErrorRule]

def map_error(exc: BaseException, errors: ErrorMap) -> ApiError | None:
    """The ``ApiError`` for ``exc`` under ``errors`` (the rule of its most specific mapped class), or None when no
    class in its hierarchy is mapped. A 401 carries ``WWW-Authenticate``; a 429 or 503 carries ``Retry-After`` when
    the exception (attribute ``retry_after_s``) or the rule gives one."""
    for cls in type(exc).__mro__:
        rule = errors.get(cls)
        if rule is None:
            continue
        headers: dict[str, str] = dict(_WWW_AUTHENTICATE) if rule.status == 401 else {}
        retry = getattr(exc, "retry_after_s", None)
        retry = retry if isinstance(retry, int) else rule.retry_after_s
        if retry is not None and rule.status in (429, 503):
            headers["Retry-After"] = str(max(1, retry))
        return ApiError(rule.status, rule.code, rule.message or str(exc), headers)
    return None


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    # A message may quote client input (a field name): never echo a NUL, which the document's text pattern forbids.
    message = message.replace("\x00", "\\u0000")
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


#: Codes used for aiohttp's own HTTP exceptions (404 for unknown paths, 405, 413, ...).
STATUS_CODES: Mapping[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


@dataclass(frozen=True)
class ErrorBody:
    """Error detail: ``code`` is stable and machine-readable, ``message`` is for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Error:
    """Every non-2xx response has this shape."""

    error: ErrorBody = field(default_factory=lambda: ErrorBody("", ""))
