from __future__ import annotations

import base64
from typing import Any

import segno
from aiohttp.test_utils import TestClient, TestServer

from edge.config import StatusConfig
from edge.web import make_app, qr_payload, render_page

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


async def test_password_protects_page_and_api_but_not_healthz() -> None:
    app = make_app(StatusConfig(password=PW, refresh_s=5), snapshot)
    async with TestClient(TestServer(app)) as client:
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
    app = make_app(StatusConfig(password=PW, refresh_s=5), snapshot)
    bad = base64.b64encode(b"x:guess").decode()
    good = base64.b64encode(f"anyone:{PW}".encode()).decode()
    async with TestClient(TestServer(app)) as client:
        statuses = [(await client.get("/", headers={"Authorization": f"Basic {bad}"})).status for _ in range(10)]
        assert statuses[:3] == [401, 401, 401]
        assert 429 in statuses
        r = await client.get("/api/status", headers={"Authorization": f"Basic {good}"})
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert (await client.get("/healthz")).status == 200
