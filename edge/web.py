"""The local status page for field technicians: server-rendered, phone-readable, refreshes itself.

``/`` (HTML) and ``/api/status`` (JSON) need the password from the config (HTTP Basic, any user name);
``/healthz`` answers without it and reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import segno
from aiohttp import web

from edge.config import StatusConfig

#: The snapshot for the page: a plain function, or a coroutine function (the daemon's reads its outbox off the
#: event loop).
StatusProvider = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PROVIDER_KEY: web.AppKey[StatusProvider] = web.AppKey("provider")
CONFIG_KEY: web.AppKey[StatusConfig] = web.AppKey("config", StatusConfig)

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


BACKOFF_KEY: web.AppKey[Backoff] = web.AppKey("backoff", Backoff)


def _authorised(request: web.Request, password: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, _, given = decoded.partition(":")
    return hmac.compare_digest(given.encode(), password.encode())


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/healthz":
        return await handler(request)
    password = request.app[CONFIG_KEY].password or ""
    backoff = request.app[BACKOFF_KEY]
    addr = request.remote or "?"  # the peer; X-Forwarded-For is not honoured
    wait = backoff.wait_s(addr)
    if wait > 0:
        return web.Response(status=429, text="too many wrong passwords\n", headers={"Retry-After": str(int(wait) + 1)})
    if not password or not _authorised(request, password):
        if "Authorization" in request.headers:
            backoff.failed(addr)
        return web.Response(
            status=401,
            text="password required\n",
            headers={"WWW-Authenticate": 'Basic realm="GridTokenX gateway", charset="UTF-8"'},
        )
    backoff.succeeded(addr)
    return await handler(request)


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
    qr = segno.make(qr_payload(s["device_id"], code), error="m").svg_inline(scale=4, border=2)
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


async def _snapshot(request: web.Request) -> dict[str, Any]:
    snap = request.app[PROVIDER_KEY]()
    return await snap if inspect.isawaitable(snap) else snap


async def _page(request: web.Request) -> web.Response:
    snap = await _snapshot(request)
    body = render_page(snap, request.app[CONFIG_KEY].refresh_s)
    return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _api(request: web.Request) -> web.Response:
    return web.json_response(await _snapshot(request), headers={"Cache-Control": "no-store"})


async def _health(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_app(cfg: StatusConfig, provider: StatusProvider) -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[CONFIG_KEY] = cfg
    app[PROVIDER_KEY] = provider
    app[BACKOFF_KEY] = Backoff()
    app.router.add_get("/", _page)
    app.router.add_get("/api/status", _api)
    app.router.add_get("/healthz", _health)
    return app
