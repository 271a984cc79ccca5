"""The web app: the static files built from ``central/web`` (``npm run build`` → ``central/web/dist``), served at
``/`` (index), ``/app/...`` (every page of the single-page app answers with the same index) and ``/assets/...``
(content-hashed files, cached for good).

Every answer carries a Content-Security-Policy without ``unsafe-inline`` or ``unsafe-eval``: scripts and styles only
from this origin, no plugins, no framing, and connections only to this origin (the API and its WebSocket).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

from central.http.errors import not_found
from central.http.roles import PUBLIC
from central.http.routes import Call, RouteTable

routes = RouteTable(tag="web")

#: Where the build puts the app (shipped as package data of ``central``).
DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
_NOT_BUILT = ("<!doctype html><title>GridTokenX</title><p>The web app is not built: run <code>make setup</code> "
              "(or <code>cd central/web &amp;&amp; npm ci &amp;&amp; npm run build</code>).</p>")


def _index() -> web.Response:
    path = DIST / "index.html"
    headers = {**_HEADERS, "Cache-Control": "no-cache"}
    if not path.is_file():  # a checkout without `make web`: say how to build it (the API itself works)
        return web.Response(text=_NOT_BUILT, content_type="text/html", headers=headers)
    return web.Response(body=path.read_bytes(), content_type="text/html", charset="utf-8", headers=headers)


@routes.get("/", access=PUBLIC, content_type="text/html", summary="The web app")
async def index(_call: Call[None, None]) -> web.Response:
    return _index()


@routes.get("/app/{page:.*}", access=PUBLIC, content_type="text/html",
            summary="A page of the web app (the single-page app routes it in the browser)")
async def page(_call: Call[None, None]) -> web.Response:
    return _index()


@routes.get("/assets/{name}", access=PUBLIC, content_type="application/octet-stream", errors=(404,),
            summary="A content-hashed file of the web app (scripts, styles)")
async def asset(call: Call[None, None]) -> web.Response:
    name = call.path("name")
    base = (DIST / "assets").resolve()
    try:
        path = (base / name).resolve()
        found = path.parent == base and path.is_file()
    except (OSError, ValueError):  # a name the file system refuses (too long, a NUL): no such file either
        found = False
    if not found:
        raise not_found()
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {**_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
    return web.Response(body=path.read_bytes(), content_type=ctype, headers=headers)
