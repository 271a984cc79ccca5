"""The one error shape every HTTP response uses: ``{"error": {"code": "...", "message": "..."}}``.

Raise :class:`ApiError` (or a helper below) from a handler; the error middleware renders it. Anything else that
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


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def unauthorized(message: str = "authentication required", code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, {"WWW-Authenticate": 'Bearer realm="gridtokenx"'})


def forbidden(message: str = "your role may not do this", code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def not_found(message: str = "not found", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


def too_many_requests(retry_after_s: int, message: str = "too many attempts; try again later",
                      code: str = "rate_limited") -> ApiError:
    return ApiError(429, code, message, {"Retry-After": str(max(1, int(retry_after_s)))})


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
