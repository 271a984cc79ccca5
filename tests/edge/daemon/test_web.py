from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import StatusConfig
from edge.web import MAX_HEAD, StatusServer, qr_payload, render_page

PW = "status-pass-1"


def snapshot(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "device_id": "7aEhHbppGeFGcsy8GZkzXcng8ebiVWaycQdMYLUX4n3A",
        "version": "0.1.0",
        "now_ms": 1_700_000_100_000,
        "uptime_s": 3700,
        "clock_synced": True,
        "verified": False,
        "alarms": [{"key": "disk_low", "message": "disk almost full <b>"}],
        "meters": [
            {"serial": "SDM<630>", "protocol": "modbus-rtu", "address": "/dev/ttyUSB0 9600 8N1 unit 1",
             "model": "SDM630", "interval_s": 60, "up": False,
             "last": {"timestamp_ms": 1_700_000_000_000, "import_wh": 1234567, "export_wh": 89, "power_w": None,
                      "extra": {"voltage_l1": 229.5}},
             "last_ok_ms": 1_700_000_000_000, "last_error": "timeout <script>", "last_error_ms": 1_700_000_090_000,
             "reads_ok": 9, "reads_failed": 1, "success_rate": 0.9},
        ],
        "outbox": {"depth": 12, "pending_unsigned": 0, "oldest_age_s": 600, "last_seq": 99, "needs_sync": False,
                   "bytes": 4096, "disk_free_bytes": 10_000_000},
        "dead_letters": {"count": 1, "recent": [{"seq": 5, "meter": "SDM<630>", "timestamp_ms": 1, "reason":
                                                 "bad_timestamp", "moved_ms": 2}]},
        "mqtt": {"broker": "mqtts://b:8883", "state": "disconnected", "since_ms": 1_700_000_000_000,
                 "last_error": "connection lost", "connects": 2, "last_ack_ms": None, "last_publish_ms": None,
                 "inflight_batches": 0, "inflight_records": 0, "published_records": 0, "acked_records": 0},
    }
    s.update(over)
    return s


def test_page_escapes_everything_and_shows_what_technicians_need() -> None:
    page = render_page(snapshot(), 10)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "SDM&lt;630&gt;" in page
    assert "1,234.567 kWh" in page
    assert "<meta http-equiv='refresh' content='10'>" in page
    assert "width=device-width" in page
    assert "<svg" in page  # QR code of the device id, inline
    assert "DOWN" in page
    assert "bad_timestamp" in page
    assert "disk almost full &lt;b&gt;" in page
    assert "10 min" in page  # oldest un-acked age


def test_page_shows_pairing_code_in_text_and_qr_and_messages_ignored_from_central() -> None:
    """Issue 10, D2: the pairing code is on the (authenticated) page and in its QR code, with the counters."""
    ignored = {"ack": {"forged": 41, "replayed": 2}, "challenge": {"forged": 3, "replayed": 0, "unpaired": 1},
               "sync": {"forged": 0, "replayed": 5}}
    snap = snapshot(pairing_code="ABCD-EFGH", ignored_from_central=ignored)
    page = render_page(snap, 10)
    assert "id='pairing-code'>ABCD-EFGH" in page
    payload = qr_payload(snap["device_id"], "ABCD-EFGH")
    assert payload == f"gridtokenx:{snap['device_id']}?pairing=ABCD-EFGH"
    assert segno.make(payload, error="m").svg_inline(scale=4, border=2) in page
    assert "41 not signed by central, 2 replayed" in page
    assert "3 not signed by central, 0 replayed, 1 wrong pairing code" in page
    assert "id='ignored-sync'>0 not signed by central, 5 replayed" in page


@contextlib.asynccontextmanager
async def serving(provider: Any = snapshot) -> AsyncIterator[tuple[StatusServer, aiohttp.ClientSession, str]]:
    server = StatusServer(StatusConfig(password=PW, refresh_s=5, port=0), provider)
    port = await server.start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
            yield server, client, f"127.0.0.1:{port}"
    finally:
        await server.close()


async def _raw(where: str, request: bytes) -> bytes:
    host, _, port = where.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_password_protects_page_and_api_but_not_healthz() -> None:
    async with serving() as (_, client, _where):
        r = await client.get("/api/status")
        assert r.status == 401
        assert "Basic" in r.headers["WWW-Authenticate"]
        bad = base64.b64encode(b"x:nope").decode()
        r = await client.get("/", headers={"Authorization": f"Basic {bad}"})
        assert r.status == 401
        r = await client.get("/", headers={"Authorization": "Basic !!!"})
        assert r.status == 401
        good = base64.b64encode(f"anyone:{PW}".encode()).decode()
        r = await client.get("/api/status", headers={"Authorization": f"Basic {good}"})
        assert r.status == 200
        assert (await r.json())["outbox"]["depth"] == 12
        r = await client.get("/", headers={"Authorization": f"Basic {good}"})
        assert r.status == 200
        assert "GridTokenX gateway" in await r.text()
        r = await client.get("/healthz")
        assert r.status == 200


async def test_password_guessing_is_slowed_down_per_address() -> None:
    """Issue 10, D7: after a few wrong passwords an address must wait (429 + Retry-After), even with the right one."""
    bad = base64.b64encode(b"x:guess").decode()
    good = base64.b64encode(f"anyone:{PW}".encode()).decode()
    async with serving() as (_, client, _where):
        statuses = [(await client.get("/", headers={"Authorization": f"Basic {bad}"})).status for _ in range(10)]
        assert statuses[:3] == [401, 401, 401]
        assert 429 in statuses
        r = await client.get("/api/status", headers={"Authorization": f"Basic {good}"})
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert (await client.get("/healthz")).status == 200


async def test_http_edges_methods_paths_heads_and_failures() -> None:
    """The small server answers what a browser or a scanner may send: other methods, unknown paths (only after the
    password), HEAD, a head too large, garbage, and a provider that fails -- with a status, never a hang."""
    good = {"Authorization": "Basic " + base64.b64encode(f"t:{PW}".encode()).decode()}

    def failing() -> dict[str, Any]:
        raise RuntimeError("boom")

    async with serving() as (_, client, where):
        r = await client.post("/api/status", headers=good)
        assert r.status == 405
        assert r.headers["Allow"] == "GET, HEAD"
        assert (await client.get("/nope")).status == 401  # nothing is revealed before the password
        r = await client.get("/nope", headers=good)
        assert r.status == 404
        r = await client.get("/api/status?x=1", headers=good)
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json; charset=utf-8"
        assert r.headers["Cache-Control"] == "no-store"
        r = await client.head("/", headers=good)
        assert r.status == 200
        assert int(r.headers["Content-Length"]) > 1000
        assert await r.read() == b""
        big = await _raw(where, b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n")
        assert big.startswith(b"HTTP/1.1 431 ")
        garbage = await _raw(where, b"HELLO\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400 ")
        assert (await _raw(where, b"GET / SPDY/3\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    async with serving(failing) as (_, client, _where):
        r = await client.get("/api/status", headers=good)
        assert r.status == 500
        assert "boom" not in await r.text()


def test_the_daemon_does_not_import_aiohttp_or_the_qr_library_at_start() -> None:
    """Issue 13: the status page costs no web framework (aiohttp.web was 11.5 MB of RSS) and the QR library is only
    loaded when a page is rendered; the version is read without importlib.metadata."""
    import subprocess  # noqa: PLC0415

    code = ("import sys, edge.cli, edge.daemon, edge.meter_setup; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'segno') "
            "or m == 'importlib.metadata'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_software_version_is_the_installed_distributions(tmp_path: Any) -> None:
    import importlib.metadata  # noqa: PLC0415

    from edge.daemon import software_version  # noqa: PLC0415

    assert software_version() == importlib.metadata.version("gridtokenx")
    info = tmp_path / "gridtokenx-9.8.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gridtokenx\nVersion: 9.8.7\n\nVersion: body\n")
    assert software_version([str(tmp_path)]) == "9.8.7"
    assert software_version([str(tmp_path / "missing")]) == "0+unknown"


_TOKEN = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=0, max_size=40)
_LINE = st.text(alphabet=st.characters(min_codepoint=0x00, max_codepoint=0xFF, blacklist_characters="\r\n"),
                max_size=80)


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    """What a scanner, a broken client or an attacker on the LAN may send as a request head."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300)) + b"\r\n\r\n"
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "get", ""]) | _TOKEN)
    target = draw(st.sampled_from(["/", "/api/status", "/healthz", "/nope", "*", ""]) | _TOKEN)
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.1 extra"]) | _TOKEN)
    lines = [f"{method} {target} {version}", *draw(st.lists(_LINE, max_size=6))]
    if draw(st.booleans()):
        auth = draw(st.sampled_from([f"t:{PW}", f"t:{PW}x", ":", ""]) | _LINE)
        lines.append("Authorization: Basic " + base64.b64encode(auth.encode("latin-1", "replace")).decode())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


@settings(max_examples=150, deadline=None)
@given(request_heads())
def test_any_request_head_gets_a_status_and_never_an_internal_error(head: bytes) -> None:
    """Hypothesis: whatever arrives, the server answers with one of its statuses (never 500, never silence), and
    keeps answering a good request afterwards."""

    async def exchange() -> tuple[bytes, bytes]:
        async with serving() as (_, _client, where):
            answer = await _raw(where, head)
            after = await _raw(where, b"GET /healthz HTTP/1.1\r\n\r\n")
        return answer, after

    answer, after = asyncio.run(exchange())
    assert answer[:9] == b"HTTP/1.1 ", answer[:80]
    assert int(answer[9:12]) in {200, 400, 401, 404, 405, 431}, answer[:80]
    assert after.startswith(b"HTTP/1.1 200 ")


async def test_one_address_holding_connections_open_does_not_lock_the_technician_out() -> None:
    """Slowloris on the LAN: one host opens every connection the page allows and sends its request head byte by byte
    (each connection may take the 10 s head timeout, and is opened again). The page answered 503 "busy" to everyone
    else for as long as that went on; now one address holds at most a few connections and the technician's phone
    still gets the page."""
    good = {"Authorization": "Basic " + base64.b64encode(f"t:{PW}".encode()).decode()}
    async with serving() as (server, client, where):
        host, _, port = where.partition(":")
        held = [await asyncio.open_connection(host, int(port), local_addr=("127.0.0.2", 0)) for _ in range(16)]
        try:
            for _, writer in held:
                writer.write(b"GET / HT")  # ... and never the rest
            await asyncio.gather(*(w.drain() for _, w in held))
            for _ in range(200):  # the server has taken up the connections it keeps
                if server._open >= 4:
                    break
                await asyncio.sleep(0.01)
            r = await client.get("/", headers=good)
            assert r.status == 200
        finally:
            for _, writer in held:
                writer.close()
