"""The browser's session flow, beside the JSON one (``auth_routes``): the refresh token lives only in an HttpOnly,
Secure, SameSite=Strict cookie scoped to these paths, and the access token is returned in the body (the web app keeps
it in memory only, so no token readable by page scripts survives a reload).

CSRF: the cookie is SameSite=Strict (never sent on a cross-site request), and every route here also requires the
``X-GTX-CSRF: 1`` header — a custom header a cross-site form or image cannot send, and which a cross-origin script
can only send after a CORS preflight that central never answers with permission. A request whose ``Origin`` header
names another host is refused as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from aiohttp import web

from central.http import ANY_USER, PUBLIC, Call, RouteTable
from central.http.errors import ApiError, unauthorized
from central.http.schema import to_json
from central.identity.auth_routes import LoginIn, UserOut, user_out
from central.identity.http_errors import ERRORS
from central.identity.model import Session, SessionInfo

routes = RouteTable(tag="accounts", error_map=ERRORS)

#: The refresh-token cookie and the paths it is sent to (only this flow's routes).
COOKIE = "gtx_refresh"
COOKIE_PATH = "/api/v1/auth/session"
CSRF_HEADER = "X-GTX-CSRF"


@dataclass(frozen=True)
class AccessOut:
    """A short-lived access token for ``Authorization: Bearer`` (the refresh token is in the HttpOnly cookie)."""

    access_token: str
    token_type: str
    expires_in: int
    expires_at: int
    user: UserOut


def _check_csrf(request: web.Request) -> None:
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(403, "csrf_header_missing", f"this route needs the {CSRF_HEADER}: 1 header")
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null":
        host = origin.split("://", 1)[-1]
        if host != request.host:
            raise ApiError(403, "cross_origin", "cross-origin session requests are refused")


def _session_response(session: Session, ttl: int) -> web.Response:
    out = AccessOut(session.access_token, "Bearer", ttl, session.access_expires_at, user_out(session.user))
    resp = web.Response(body=to_json(out), content_type="application/json")
    resp.headers["Cache-Control"] = "no-store"
    max_age = max(0, int((session.refresh_expires_at - datetime.now(UTC)).total_seconds()))
    resp.set_cookie(COOKIE, session.refresh_token, max_age=max_age, path=COOKIE_PATH, secure=True, httponly=True,
                    samesite="Strict")
    return resp


def _cookie(request: web.Request) -> str:
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > 200:
        raise unauthorized("no session: log in", "no_session")
    return token


@routes.post("/api/v1/auth/session", access=PUBLIC, body=LoginIn, response=AccessOut, errors=(401, 403, 429),
             summary="Log in from the web app: access token in the body, refresh token in an HttpOnly cookie "
                     "(needs the X-GTX-CSRF: 1 header)")
async def session_login(call: Call[LoginIn, None]) -> web.Response:
    _check_csrf(call.request)
    session = await call.services.identity.accounts.login(call.body.email, call.body.password, call.address,
                                                          call.user_agent)
    return _session_response(session, call.services.tokens.ttl_s)


@routes.post("/api/v1/auth/session/refresh", access=PUBLIC, response=AccessOut, errors=(401, 403),
             summary="A new access token from the session cookie (the cookie's refresh token rotates; needs the "
                     "X-GTX-CSRF: 1 header)")
async def session_refresh(call: Call[None, None]) -> web.Response:
    _check_csrf(call.request)
    session = await call.services.identity.accounts.refresh(_cookie(call.request))
    return _session_response(session, call.services.tokens.ttl_s)


@routes.delete("/api/v1/auth/session", access=PUBLIC, status=204, errors=(403,),
               summary="Log out of the web app: ends the cookie's session and clears the cookie (needs the "
                       "X-GTX-CSRF: 1 header)")
async def session_logout(call: Call[None, None]) -> web.Response:
    _check_csrf(call.request)
    token = call.request.cookies.get(COOKIE, "")
    if token and len(token) <= 200:
        await call.services.identity.accounts.logout(token)
    resp = web.Response(status=204)
    resp.del_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="Strict")
    return resp


# --- active sessions (the settings page): every login of mine, ending one or all -----------------------------------


@dataclass(frozen=True)
class SessionOut:
    """One active session (a login): the browser it was opened from (its User-Agent), when it began, when it was last
    used (its last token refresh), and whether it is the session of this request's access token."""

    id: UUID
    user_agent: str
    created_at: datetime
    last_used_at: datetime
    current: bool


def _current_session(call: Call[None, None]) -> UUID | None:
    header = call.request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return call.services.tokens.inspect(header[len("Bearer "):]).session


def _session_out(s: SessionInfo, current: UUID | None) -> SessionOut:
    return SessionOut(s.id, s.user_agent, s.created_at, s.last_used_at, s.id == current)


@routes.get("/api/v1/me/sessions", access=ANY_USER, response=list[SessionOut],
            summary="My active sessions (logins), last used first; `current` marks this one")
async def my_sessions(call: Call[None, None]) -> list[SessionOut]:
    current = _current_session(call)
    return [_session_out(s, current) for s in await call.services.identity.accounts.sessions(call.user.user_id)]


@routes.delete("/api/v1/me/sessions/{session_id}", access=ANY_USER, status=204, errors=(404,),
               summary="End one of my sessions (its refresh token stops working, its live sockets close; an access "
                       "token it already holds lasts until it expires)")
async def end_session(call: Call[None, None]) -> None:
    await call.services.identity.accounts.end_session(call.user.user_id, call.path_uuid("session_id"))


@routes.delete("/api/v1/me/sessions", access=ANY_USER, status=204,
             summary="Log out everywhere: every session of mine ends, this one included")
async def end_all_sessions(call: Call[None, None]) -> None:
    await call.services.identity.accounts.end_all_sessions(call.user.user_id)
