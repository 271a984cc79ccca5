"""Every route of the full application (every wired subsystem) declares its access, is documented in the
OpenAPI document, and is enforced: for each route × (anonymous + every role), callers outside the declared roles
get 401/403 and callers inside pass the access check (any other status, never 401/403 or 500)."""

from __future__ import annotations

import re
import uuid

from central.app import TOKENS, create_app
from central.http.context import ROUTES
from central.http.openapi import openapi_path
from central.http.roles import Role
from central.http.routes import route_of
from central.identity.session_routes import CSRF_HEADER

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _concrete(path: str) -> str:
    return _PARAM.sub(lambda _m: str(uuid.UUID(int=0)), path)


async def test_every_route_is_declared_documented_and_enforced(config_factory, broker, client_factory) -> None:
    app = create_app(config_factory(broker))
    client = await client_factory(app)
    declared = app[ROUTES]
    assert declared, "the app has routes"

    # No route unclassified: every handler on the router comes from a declaration.
    for resource in app.router.resources():
        for route in resource:
            if route.method == "HEAD":
                continue
            assert route_of(route.handler) is not None, f"{route.method} {resource.canonical} has no declaration"

    doc = await (await client.get("/api/openapi.json")).json()
    for r in declared:
        op = doc["paths"][openapi_path(r.path)][r.method.lower()]
        assert op["x-access"] == ("public" if r.access.public else sorted(x.value for x in r.access.roles))

    tokens = {role: app[TOKENS].issue(uuid.uuid4(), role)[0] for role in Role}
    # The cookie-session routes want their CSRF header (a browser's fetch sends it); the refresh route's credential is
    # the session cookie, not a bearer token, so without one it answers 401 whoever calls.
    csrf = {CSRF_HEADER: "1"}
    cookie_credential = {("POST", "/api/v1/auth/session/refresh")}
    checked = 0
    for r in declared:
        url = _concrete(r.path)
        callers: list[tuple[Role | None, dict[str, str]]] = [(None, dict(csrf))]
        callers += [(role, {"Authorization": f"Bearer {tok}", **csrf}) for role, tok in tokens.items()]
        for role, headers in callers:
            resp = await client.request(r.method, url, headers=headers)
            await resp.read()
            label = f"{r.method} {r.path} as {role.value if role else 'anonymous'}"
            if (r.method, r.path) in cookie_credential:
                assert resp.status == 401, f"{label} without a session cookie: {resp.status}"
            elif r.access.allows(role):
                assert resp.status not in (401, 403, 500), f"{label}: {resp.status}"
            elif role is None:
                assert resp.status == 401, f"{label}: {resp.status}"
                assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
            else:
                assert resp.status == 403, f"{label}: {resp.status}"
            checked += 1
    assert checked == len(declared) * (len(Role) + 1)
