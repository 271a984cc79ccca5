"""Route declarations: each route carries its access (roles), request and response schemas and documentation; the
aiohttp handler, the auth check and the OpenAPI document are all derived from the same declaration.

    routes = RouteTable(tag="devices")

    @routes.post("/api/v1/devices", access=roles(Role.INSTALLER, Role.ADMIN), body=RegisterDevice,
                 response=DeviceOut, status=201, errors=(400, 409), summary="Register a gateway")
    async def register_device(call: Call[RegisterDevice, None]) -> DeviceOut:
        ...  # call.body is a validated RegisterDevice, call.user the Principal, call.app the aiohttp app

A route declared with ``idempotent=True`` accepts an ``Idempotency-Key`` header: a retry with the same key replays
the first response instead of running again (:mod:`central.http.idempotency`).

Handlers call services and let their domain errors propagate: ``RouteTable(tag=..., error_map=...)`` declares how the
subsystem's exception tree answers (:func:`central.http.errors.map_error`), and every route of the table applies it.

A handler returns a response dataclass (or a list of them, or None for 204) which is serialised with the declared
status, or any ``web.StreamResponse`` (HTML pages, WebSockets, text) which is passed through unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from aiohttp import web

from central.errors import CentralError, ServiceUnavailableError
from central.http.audit import AUDIT, AuditLog, audited
from central.http.auth import Principal
from central.http.errors import ApiError, ErrorMap, bad_request, error_response, map_error, not_found, unauthorized
from central.http.idempotency import HEADER, IDEMPOTENCY, REPLAYED_HEADER, Stored, fingerprint, parse_key, storable
from central.http.roles import Access
from central.http.schema import ValidationError, load, load_query, to_json

if TYPE_CHECKING:
    from central.services import Services

B = TypeVar("B")
Q = TypeVar("Q")

_ROUTE_ATTR = "__gtx_route__"
_log = logging.getLogger("central.http")

#: Every subsystem's services (a ``central.services.Services``, built by ``central.bootstrap.bootstrap`` once the
#: adapters are open); handlers read it as ``call.services``.
SERVICES: web.AppKey[Services] = web.AppKey("gtx.services")


@dataclass(frozen=True)
class Call(Generic[B, Q]):
    """What a handler receives: the raw request plus its validated parts."""

    request: web.Request
    body: B
    query: Q
    principal: Principal | None

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def services(self) -> Services:
        """Every subsystem's services, set once at start-up by the composition root (``central.app``)."""
        return self.request.app[SERVICES]

    @property
    def user(self) -> Principal:
        """The logged-in caller (always set on non-public routes)."""
        if self.principal is None:
            raise unauthorized()
        return self.principal

    def path(self, name: str) -> str:
        """A path parameter; one holding a NUL (``%00``: no stored name can) is a 404 (no such resource)."""
        value = self.request.match_info[name]
        if "\x00" in value:
            raise not_found()
        return value

    def path_uuid(self, name: str) -> UUID:
        """A UUID path parameter; a malformed one is a 404 (no such resource)."""
        try:
            return UUID(self.request.match_info[name])
        except ValueError:
            raise not_found() from None

    @property
    def address(self) -> str:
        return client_address(self.request)

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("User-Agent", "")[:512]


Handler = Callable[[Call[Any, Any]], Awaitable[Any]]
HandlerT = TypeVar("HandlerT", bound=Handler)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    access: Access
    summary: str
    description: str = ""
    #: Request body schema: a dataclass or ``list[Dataclass]``.
    body: Any = None
    query: type[Any] | None = None
    #: Response schema: a dataclass, ``list[Dataclass]``, or None (no JSON body).
    response: Any = None
    status: int = 200
    #: Error statuses this route can answer besides 401/403 (documented with the error schema).
    errors: tuple[int, ...] = ()
    #: Non-2xx statuses whose body is not the error shape, with their schema (``/readyz``'s 503).
    other_responses: tuple[tuple[int, Any], ...] = ()
    tags: tuple[str, ...] = ()
    #: Media type of a non-JSON response (``text/html``, ``text/plain``) for the docs.
    content_type: str = "application/json"
    #: OpenAPI operationId (default: the handler's name).
    operation_id: str = ""
    #: Accepts an ``Idempotency-Key`` header (retries replay the first response; see central.http.idempotency).
    idempotent: bool = False
    #: How the domain errors the handler lets escape answer (the route table's map).
    error_map: ErrorMap = field(default_factory=dict)

    @property
    def op_id(self) -> str:
        return self.operation_id or self.handler.__name__


def client_address(request: web.Request) -> str:
    """The client's address: when the app trusts its (one) reverse proxy, the last ``X-Forwarded-For`` hop — the
    address that proxy saw. Earlier hops are whatever the client wrote, so they never count (rate limits)."""
    if request.app.get(TRUST_FORWARDED, False):
        fwd = ",".join(request.headers.getall("X-Forwarded-For", []))
        last = fwd.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.remote or "unknown"


TRUST_FORWARDED = web.AppKey("gtx.trust_forwarded", bool)
#: The authenticated caller, set by the auth middleware (None on public routes without a valid token).
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("gtx.principal")
MAX_BODY = web.AppKey("gtx.max_body", int)
#: A smaller body limit for this request's route class (set by the rate-limit middleware: auth routes).
BODY_LIMIT: web.RequestKey[int] = web.RequestKey("gtx.body_limit")


@dataclass
class RouteTable:
    """A subsystem's routes. List it in the subsystem's ``Subsystem(routes=...)`` (``central.wiring``)."""

    tag: str = ""
    #: The subsystem's domain exceptions → HTTP (status, code), applied to every route of the table.
    error_map: ErrorMap = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        access: Access,
        summary: str,
        description: str = "",
        body: Any = None,
        query: type[Any] | None = None,
        response: Any = None,
        status: int = 200,
        errors: Sequence[int] = (),
        other_responses: Sequence[tuple[int, Any]] = (),
        tags: Sequence[str] = (),
        content_type: str = "application/json",
        operation_id: str = "",
        idempotent: bool = False,
    ) -> Callable[[HandlerT], HandlerT]:
        def deco(fn: HandlerT) -> HandlerT:
            self.routes.append(
                Route(
                    method=method.upper(),
                    path=path,
                    handler=fn,
                    access=access,
                    summary=summary,
                    description=description or (fn.__doc__ or "").strip(),
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    errors=tuple(errors),
                    other_responses=tuple(other_responses),
                    tags=tuple(tags) or ((self.tag,) if self.tag else ()),
                    content_type=content_type,
                    operation_id=operation_id,
                    idempotent=idempotent,
                    error_map=self.error_map,
                )
            )
            return fn

        return deco

    def get(self, path: str, **kw: Any) -> Callable[[HandlerT], HandlerT]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[HandlerT], HandlerT]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[HandlerT], HandlerT]:
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[HandlerT], HandlerT]:
        return self.route("DELETE", path, **kw)


def route_of(handler: Any) -> Route | None:
    """The declaration behind an aiohttp handler built by :func:`aiohttp_handler`."""
    r = getattr(handler, _ROUTE_ATTR, None)
    return r if isinstance(r, Route) else None


def aiohttp_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for ``route``: validates input, calls the handler, serialises the result."""

    async def handle(request: web.Request) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        log = request.app.get(AUDIT)
        if log is None or principal is None or not audited(route.method, principal.role):
            return await _handle(request, route, principal)
        return await _audited(request, route, principal, log)

    handle.__name__ = route.handler.__name__
    setattr(handle, _ROUTE_ATTR, route)
    return handle


async def _handle(request: web.Request, route: Route, principal: Principal | None) -> web.StreamResponse:
    key = parse_key(request.headers.get(HEADER)) if route.idempotent else None
    raw = await _read_raw(request) if route.body is not None else b""
    if key is not None and principal is not None:
        return await _idempotent(request, route, principal, key, raw)
    return await _run(request, route, principal, raw)


async def _audited(request: web.Request, route: Route, principal: Principal, log: AuditLog) -> web.StreamResponse:
    """An admin's (or REC authority's) action: on record before it runs, completed with how it ended."""
    row = await log.begin(actor=principal.user_id, role=principal.role, method=route.method, route=route.path,
                          params=dict(request.match_info), address=client_address(request))
    status: int = 500
    code: str | None = "internal"
    try:
        resp = await _handle(request, route, principal)
        status, code = resp.status, None
    except ApiError as exc:
        status, code = exc.status, exc.code
        raise
    except web.HTTPException as exc:
        status, code = exc.status, None
        raise
    else:
        return resp
    finally:
        try:
            await log.finish(row, status, code)
        except (asyncpg.PostgresError, OSError):  # the row stays open (status NULL): still on record
            _log.exception("audit row not completed", extra={"audit_id": row})


async def _run(request: web.Request, route: Route, principal: Principal | None, raw: bytes) -> web.StreamResponse:
    body: Any = None
    if route.body is not None:
        body = _parse_body(raw, route.body)
    query: Any = None
    if route.query is not None:
        try:
            query = load_query(route.query, request.query)
        except ValidationError as exc:
            raise bad_request(str(exc)) from None
    try:
        result = await route.handler(Call(request, body, query, principal))
    except ServiceUnavailableError as exc:  # a service the composition root left `Unavailable` (e.g. no ledger)
        raise ApiError(503, exc.code, exc.reason) from exc
    except CentralError as exc:
        api = None if isinstance(exc, ApiError) else map_error(exc, route.error_map)
        if api is None:
            raise
        raise api from exc
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204 if route.status in (200, 204) else route.status)
    return web.Response(
        body=to_json(result),
        status=route.status,
        content_type="application/json",
    )


async def _idempotent(
    request: web.Request, route: Route, principal: Principal, key: str, raw: bytes
) -> web.StreamResponse:
    """Run the request once per (user, key); replay the stored response to retries."""
    store = request.app[IDEMPOTENCY]
    user = principal.user_id
    begun = await store.begin(user, key, fingerprint(request.method, request.path_qs, raw))
    if begun.mismatch:
        raise ApiError(422, "idempotency_key_reused", f"this {HEADER} was used for a different request")
    if begun.in_progress:
        raise ApiError(409, "idempotency_in_progress", f"a request with this {HEADER} is still running; retry later")
    if begun.replay is not None:
        r = begun.replay
        return web.Response(body=r.body, status=r.status, content_type=r.content_type or None,
                            headers={REPLAYED_HEADER: "true"})  # fmt: skip
    stored = False
    try:
        resp = await _run(request, route, principal, raw)
        if isinstance(resp, web.Response) and storable(resp.status) and isinstance(resp.body, bytes | None):
            content_type = resp.content_type if resp.body else ""
            await store.finish(user, key, Stored(resp.status, content_type, resp.body or b""))
            stored = True
    except ApiError as exc:
        if storable(exc.status):
            err = error_response(exc.status, exc.code, exc.message)
            assert isinstance(err.body, bytes)
            await store.finish(user, key, Stored(exc.status, "application/json", err.body))
            stored = True
        raise
    else:
        return resp
    finally:
        if not stored:
            await store.release(user, key)


async def _read_raw(request: web.Request) -> bytes:
    limit = min(request.app.get(MAX_BODY, 1_048_576), request.get(BODY_LIMIT, 1 << 62))
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")
    # ``StreamReader.read(n)`` returns whatever one chunk holds: read until EOF (or past the limit).
    buf = bytearray()
    while len(buf) <= limit:
        chunk = await request.content.read(limit + 1 - len(buf))
        if not chunk:
            break
        buf += chunk
    if len(buf) > limit:
        raise ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")
    if not buf:
        raise bad_request("a JSON request body is required", "malformed_json")
    return bytes(buf)


def _parse_body(raw: bytes, cls: Any) -> Any:
    try:
        data = json.loads(raw, parse_float=Decimal)  # exact: 25.0 may be an integer field, 1e400 is no overflow
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays/objects
        raise bad_request("request body is not valid JSON", "malformed_json") from None
    try:
        return load(cls, data)
    except ValidationError as exc:
        raise bad_request(str(exc)) from None
