"""The OpenAPI 3.1 document, generated from the route declarations (never hand-maintained)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from central.http.errors import Error
from central.http.idempotency import HEADER, MAX_KEY_LENGTH
from central.http.routes import Route
from central.http.schema import NO_NUL_PATTERN, SchemaRegistry, type_hints

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_REASONS = {
    400: "Invalid request",
    401: "Not logged in, or the token is invalid or expired",
    403: "The caller's role may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "The request is understood but cannot be carried out",
    429: "Too many attempts (see Retry-After)",
    503: "A dependency is unavailable",
}


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Any unique string (a UUID) chosen by the client. A retry with the same key and the same request replays the "
        "first response (header Idempotent-Replayed: true) instead of acting twice; the same key with another request "
        "is 422, while the first request still runs 409. 5xx and 429 answers are not kept. Keys expire after "
        "http.idempotency_ttl_s (default 24 h)."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[!-~]+$"},
}


def openapi_path(path: str) -> str:
    """aiohttp ``/a/{id:\\d+}`` → OpenAPI ``/a/{id}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def build_openapi(routes: Sequence[Route], *, title: str, version: str, server_url: str) -> dict[str, Any]:
    reg = SchemaRegistry()
    error_ref = reg.ref(Error)
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "operationId": r.op_id,
            "summary": r.summary,
            "tags": list(r.tags),
            "x-access": "public" if r.access.public else sorted(x.value for x in r.access.roles),
        }
        if r.description:
            op["description"] = r.description
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": NO_NUL_PATTERN}}
            for name in _PARAM.findall(r.path)
        ]
        if r.query is not None:
            hints = type_hints(r.query)
            for f in dataclasses.fields(r.query):
                required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                params.append(
                    {
                        "name": f.name,
                        "in": "query",
                        "required": required,
                        "schema": reg.schema(hints[f.name], f.metadata.get("gtx", {})),
                    }
                )
        params += [IDEMPOTENCY_PARAMETER] if r.idempotent else []
        if params:
            op["parameters"] = params
        if r.body is not None:
            body_schema = _response_schema(reg, r.body)
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": "Success"}
        if r.response is not None:
            ok["content"] = {r.content_type: {"schema": _response_schema(reg, r.response)}}
        elif r.content_type != "application/json":
            ok["content"] = {r.content_type: {"schema": {"type": "string", "pattern": NO_NUL_PATTERN}}}
        responses[str(r.status)] = ok
        statuses = _error_statuses(r)
        if not r.access.public:
            op["security"] = [{"bearerAuth": []}]
        for status in sorted(statuses):
            responses[str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        for status, schema in r.other_responses:
            responses[str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": _response_schema(reg, schema)}},
            }
        op["responses"] = responses
        paths.setdefault(openapi_path(r.path), {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": reg.components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _error_statuses(r: Route) -> set[int]:
    # An idempotency key in use by a running request is 409; one used for another request 422.
    statuses = set(r.errors) | ({400, 409, 422} if r.idempotent else set())
    if r.body is not None or r.query is not None:
        statuses.add(400)
    if r.body is not None:
        statuses.add(413)  # beyond http.max_body_bytes (http.auth_max_body_bytes on the auth routes)
    if r.path.startswith("/api/"):
        statuses.add(429)  # the route class's rate limit (central/http/ratelimit.py)
    if not r.access.public:
        statuses |= {401, 403}
    return statuses


def _response_schema(reg: SchemaRegistry, response: Any) -> dict[str, Any]:
    if get_origin(response) is list:
        return {"type": "array", "items": reg.schema(get_args(response)[0])}
    if isinstance(response, dict):
        return response
    return reg.schema(response)
