"""The local status page for field technicians: server-rendered, phone-readable, refreshes itself.

``/`` (HTML) and ``/api/status`` (JSON) need the password from the config (HTTP Basic, any user name);
``/healthz`` answers without it and reveals nothing.

The server is a small HTTP/1.1 responder on ``asyncio.start_server`` (GET and HEAD of three fixed paths, one request
per connection, bounded head size, read timeout and connection count). It replaced aiohttp here: importing
``aiohttp.web`` cost the daemon 11.5 MB of its 60 MB budget (issue 13) for three routes a technician opens now and
then (docs/decisions/0018-edge-status-server.md). The QR code library is imported the first time the page is rendered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hmac
import html
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.config import StatusConfig

log = logging.getLogger(__name__)

#: The snapshot for the page: a plain function, or a coroutine function (the daemon's reads its outbox off the
#: event loop).
StatusProvider = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]

FREE_FAILURES = 3  # wrong passwords an address may send before it has to wait
MAX_DELAY_S = 300.0
MAX_TRACKED = 1024  # addresses remembered; the oldest is forgotten first (bounded memory)


class Backoff:
    """Per-address exponential backoff after wrong passwords (issue 10, D7): 1 s, 2 s, 4 s ... up to 5 min."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (failures, blocked until)

    def wait_s(self, addr: str) -> float:
        entry = self._seen.get(addr)
        return 0.0 if entry is None else max(0.0, entry[1] - self._now())

    def failed(self, addr: str) -> None:
        failures = self._seen.pop(addr, (0, 0.0))[0] + 1
        extra = failures - FREE_FAILURES
        delay = 0.0 if extra <= 0 else min(MAX_DELAY_S, 2.0 ** (extra - 1))
        self._seen[addr] = (failures, self._now() + delay)
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)

    def succeeded(self, addr: str) -> None:
        self._seen.pop(addr, None)


def _authorised(header: str, password: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, _, given = decoded.partition(":")
    return hmac.compare_digest(given.encode(), password.encode())


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _ts(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
    return f"{stamp} UTC ({_age(max(0, (now_ms - ms) // 1000))} ago)"


def _kwh(wh: int) -> str:
    return f"{wh // 1000:,}.{wh % 1000:03d} kWh"


def _badge(ok: bool | None, yes: str, no: str, unknown: str = "unknown") -> str:
    cls, text = ("unk", unknown) if ok is None else (("ok", yes) if ok else ("bad", no))
    return f'<span class="badge {cls}">{html.escape(text)}</span>'


CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;padding:0.8rem;background:#f4f6f8;color:#1a1a1a;
font-size:16px;line-height:1.4}
h1{font-size:1.3rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin:0 0 .4rem}
section{background:#fff;border-radius:8px;padding:.8rem;margin:0 0 .8rem;box-shadow:0 1px 2px #0002}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.2rem .3rem;vertical-align:top}
th{color:#555;font-weight:600;width:45%}.mono{font-family:ui-monospace,monospace;word-break:break-all}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-weight:600;font-size:.9rem}
.ok{background:#d6f5d6;color:#135c13}.bad{background:#fbd5d5;color:#8a1212}.unk{background:#eee;color:#555}
.alarm{background:#8a1212;color:#fff;padding:.6rem;border-radius:8px;margin:0 0 .8rem;font-weight:600}
.qr svg{width:160px;height:160px}.small{color:#666;font-size:.85rem}
"""


def qr_payload(device_id: str, pairing_code: str | None) -> str:
    """What the status page's QR code holds: ``gridtokenx:<device id>?pairing=<ABCD-EFGH>`` (just the device id
    when there is no pairing code)."""
    return device_id if not pairing_code else f"gridtokenx:{device_id}?pairing={pairing_code}"


@functools.lru_cache(maxsize=4)
def _qr_svg(payload: str) -> str:
    """The inline SVG of the QR code (the payload stays the same for the daemon's life: rendered once)."""
    import segno  # noqa: PLC0415 - only when a page is rendered

    svg: str = segno.make(payload, error="m").svg_inline(scale=4, border=2)
    return svg


def render_page(s: dict[str, Any], refresh_s: int) -> str:
    e = html.escape
    now = int(s["now_ms"])
    out: list[str] = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<meta http-equiv='refresh' content='{int(refresh_s)}'>",
        f"<title>GridTokenX gateway {e(s['device_id'][:8])}…</title><style>{CSS}</style></head><body>",
        "<h1>GridTokenX gateway</h1>",
    ]
    out += [f"<div class='alarm' data-alarm='{e(a['key'])}'>⚠ {e(a['message'])}</div>" for a in s["alarms"]]
    code = s.get("pairing_code")
    qr = _qr_svg(qr_payload(s["device_id"], code))
    out += [
        "<section id='device'><h2>Device</h2><table>",
        f"<tr><th>Device id</th><td class='mono' id='device-id'>{e(s['device_id'])}</td></tr>",
        f"<tr><th>Pairing code</th><td class='mono' id='pairing-code'>{e(code or '–')}"
        " <span class='small'>(enter it with the device id when registering the gateway at central)</span></td></tr>",
        f"<tr><th>Verified by central</th><td id='verified'>{_badge(s['verified'], 'verified', 'not yet')}</td></tr>",
        f"<tr><th>Software</th><td id='version'>{e(s['version'])}</td></tr>",
        f"<tr><th>Uptime</th><td id='uptime'>{_age(s['uptime_s'])}</td></tr>",
        f"<tr><th>Clock</th><td id='clock'>{_badge(s['clock_synced'], 'synchronised', 'NOT synchronised')}"
        f" <span class='small'>{_ts(now, now).split(' (')[0]}</span></td></tr>",
        f"</table><div class='qr' title='device id'>{qr}</div></section>",
        "<section id='meters'><h2>Meters</h2>",
    ]
    if not s["meters"]:
        out.append("<p>No meters configured.</p>")
    for m in s["meters"]:
        last = m["last"]
        rate = "–" if m["success_rate"] is None else f"{m['success_rate'] * 100:.1f} %"
        out += [
            f"<table class='meter' data-serial='{e(m['serial'])}'>",
            f"<tr><th>{e(m['serial'])}</th><td>{_badge(m['up'], 'up', 'DOWN', 'waiting')}</td></tr>",
            f"<tr><th>Model / protocol</th><td>{e(m['model'])} / {e(m['protocol'])}</td></tr>",
            f"<tr><th>Address</th><td class='mono'>{e(m['address'])}</td></tr>",
            f"<tr><th>Every</th><td>{m['interval_s']} s</td></tr>",
        ]
        if last is not None:
            power = "n/a" if last["power_w"] is None else f"{last['power_w']:,} W"
            out += [
                f"<tr><th>Import</th><td>{_kwh(last['import_wh'])}</td></tr>",
                f"<tr><th>Export</th><td>{_kwh(last['export_wh'])}</td></tr>",
                f"<tr><th>Power</th><td>{power}</td></tr>",
            ]
            out += [f"<tr><th>{e(k)}</th><td>{v:g}</td></tr>" for k, v in sorted(last["extra"].items())]
        if m.get("meter_clock_offset_s") is not None:  # meters that send their own clock (P1)
            out.append(f"<tr><th>Meter clock</th><td>{m['meter_clock_offset_s']:+d} s against the gateway</td></tr>")
        out += [
            f"<tr><th>Last good read</th><td>{_ts(m['last_ok_ms'], now)}</td></tr>",
            f"<tr><th>Success rate</th><td>{rate} ({m['reads_ok']} ok, {m['reads_failed']} failed)</td></tr>",
        ]
        if m["last_error"]:
            out.append(
                f"<tr><th>Last error</th><td class='err'>{e(m['last_error'])}"
                f" <span class='small'>{_ts(m['last_error_ms'], now)}</span></td></tr>"
            )
        out.append("</table><hr>")
    ob, mq, dl = s["outbox"], s["mqtt"], s["dead_letters"]
    sync = "waiting for central (chain resync)" if ob["needs_sync"] else "in sync"
    out += [
        "</section><section id='outbox'><h2>Outbox</h2><table>",
        f"<tr><th>Waiting for central</th><td id='outbox-depth'>{ob['depth']:,} readings</td></tr>",
        f"<tr><th>Oldest waiting</th><td id='outbox-oldest'>{_age(ob['oldest_age_s'])}</td></tr>",
        f"<tr><th>Unsigned (resync)</th><td>{ob['pending_unsigned']:,}</td></tr>",
        f"<tr><th>Chain</th><td>{e(sync)}, last seq {ob['last_seq']:,}</td></tr>",
    ]
    if ob["disk_free_bytes"] is not None:
        out.append(f"<tr><th>Disk free</th><td>{ob['disk_free_bytes'] // 1_000_000:,} MB</td></tr>")
    out += [
        f"<tr><th>Dead letters</th><td id='dead-letters'>{dl['count']:,}</td></tr>",
        "</table>",
    ]
    if dl["recent"]:
        out.append("<table class='small'><tr><th>seq</th><th>meter</th><th>reason</th></tr>")
        out += [
            f"<tr><td>{d['seq']}</td><td>{e(d['meter'])}</td><td>{e(d['reason'])}</td></tr>" for d in dl["recent"]
        ]
        out.append("</table>")
    out += [
        "</section><section id='mqtt'><h2>Link to central</h2><table>",
        f"<tr><th>Broker</th><td class='mono'>{e(mq['broker'])}</td></tr>",
        f"<tr><th>State</th><td id='mqtt-state'>{_badge(mq['state'] == 'connected', mq['state'], mq['state'])}"
        f" <span class='small'>since {_ts(mq['since_ms'], now)}</span></td></tr>",
        f"<tr><th>Last ack</th><td id='last-ack'>{_ts(mq['last_ack_ms'], now)}</td></tr>",
        f"<tr><th>In flight</th><td>{mq['inflight_records']:,} readings in {mq['inflight_batches']} batches</td></tr>",
        f"<tr><th>Sent / acknowledged</th><td>{mq['published_records']:,} / {mq['acked_records']:,}</td></tr>",
    ]
    ig = s.get("ignored_from_central") or {}
    for kind, label in (("ack", "acks"), ("challenge", "challenges"), ("sync", "sync replies")):
        c = ig.get(kind)
        if c is None:
            continue
        unpaired = f", {c['unpaired']:,} wrong pairing code" if "unpaired" in c else ""
        out.append(
            f"<tr><th>Ignored {label}</th><td id='ignored-{kind}'>{c['forged']:,} not signed by central, "
            f"{c['replayed']:,} replayed{unpaired}</td></tr>"
        )
    if mq["last_error"]:
        out.append(f"<tr><th>Last error</th><td class='err'>{e(mq['last_error'])}</td></tr>")
    out += [
        "</table></section>",
        f"<p class='small'>Refreshes every {int(refresh_s)} s · JSON: <a href='/api/status'>/api/status</a></p>",
        "</body></html>",
    ]
    return "".join(out)


MAX_HEAD = 16 * 1024  # request line + headers
HEAD_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 16
#: Connections one address may hold at once: a host that keeps connections open (slowloris) cannot take all of them
#: and lock the technician out.
MAX_PER_ADDRESS = 4
PAGE_PATHS = ("/", "/api/status")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)

    def encode(self, *, head_only: bool = False) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Error')}", f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body)}", "Connection: close", "X-Content-Type-Options: nosniff",
                 *(f"{k}: {v}" for k, v in self.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else self.body)


def _text(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, text.encode(), TEXT, headers or {})


def _peer(writer: asyncio.StreamWriter) -> str:
    """The client's address (X-Forwarded-For is not honoured)."""
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


class StatusServer:
    """The status page's HTTP server. ``await start()`` binds (port 0: any free port, see :attr:`port`)."""

    def __init__(self, cfg: StatusConfig, provider: StatusProvider, backoff: Backoff | None = None) -> None:
        self.cfg = cfg
        self._provider = provider
        self.backoff = backoff or Backoff()
        self._server: asyncio.Server | None = None
        self._open = 0
        self._by_addr: dict[str, int] = {}
        self.port: int | None = None

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Listen on ``host:port`` (default: the config's); returns the bound port. OSError when it cannot bind."""
        self._server = await asyncio.start_server(
            self._connection, host or self.cfg.bind, self.cfg.port if port is None else port, limit=MAX_HEAD
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def handle(self, method: str, path: str, headers: Mapping[str, str], peer: str) -> Response:
        """One request (header names in lower case) from address ``peer``: the response, auth and backoff applied."""
        if method not in ("GET", "HEAD"):
            return _text(405, "method not allowed\n", {"Allow": "GET, HEAD"})
        if path == "/healthz":
            return _text(200, "ok\n")
        refused = self._refused(headers.get("authorization"), peer)
        if refused is not None:
            return refused
        if path not in PAGE_PATHS:
            return _text(404, "not found\n")
        snap = self._provider()
        data = await snap if inspect.isawaitable(snap) else snap
        no_store = {"Cache-Control": "no-store"}
        if path == "/":
            page = render_page(data, self.cfg.refresh_s)
            return Response(200, page.encode(), "text/html; charset=utf-8", no_store)
        return Response(200, json.dumps(data).encode(), "application/json; charset=utf-8", no_store)

    def _refused(self, given: str | None, peer: str) -> Response | None:
        """401 or 429 unless ``given`` (the Authorization header) holds the password and ``peer`` may try."""
        password = self.cfg.password or ""
        wait = self.backoff.wait_s(peer)
        if wait > 0:
            return _text(429, "too many wrong passwords\n", {"Retry-After": str(int(wait) + 1)})
        if not password or not _authorised(given or "", password):
            if given is not None:
                self.backoff.failed(peer)
            return _text(401, "password required\n",
                         {"WWW-Authenticate": 'Basic realm="GridTokenX gateway", charset="UTF-8"'})
        self.backoff.succeeded(peer)
        return None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = _peer(writer)
        self._open += 1
        held = self._by_addr[addr] = self._by_addr.get(addr, 0) + 1
        try:
            if self._open > MAX_CONNECTIONS or held > MAX_PER_ADDRESS:
                response, method = _text(503, "busy\n"), "GET"
            else:
                response, method = await self._respond(reader, addr)
            writer.write(response.encode(head_only=method == "HEAD"))
            await asyncio.wait_for(writer.drain(), HEAD_TIMEOUT_S)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open -= 1
            if self._by_addr[addr] <= 1:
                del self._by_addr[addr]
            else:
                self._by_addr[addr] -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader, addr: str) -> tuple[Response, str]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            return _text(431, "request head too large\n"), "GET"
        try:
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ")
        except ValueError:
            return _text(400, "bad request\n"), "GET"
        if not version.startswith("HTTP/1."):
            return _text(400, "bad request\n"), "GET"
        headers: dict[str, str] = {}
        for line in header_lines:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                return _text(400, "bad request\n"), "GET"
            headers.setdefault(name.lower(), value.strip())
        try:
            return await self.handle(method, target.split("?", 1)[0], headers, addr), method
        except Exception:
            log.exception("status page request failed", extra={"path": target.split("?", 1)[0]})
            return _text(500, "internal error\n"), method
