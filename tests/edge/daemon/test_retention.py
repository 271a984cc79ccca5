"""Retention: the outbox holds 30 days of 4 meters at 1/min; a disk watermark alarms loudly and drops nothing."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from edge.config import load_config
from edge.daemon import Daemon
from edge.meters.base import MeterSample
from edge.meters.fake import FakeMeterReader
from edge.outbox import Outbox
from edge.sdnotify import Notifier
from edge.signing import ProtocolSigner
from protocol.keys import DeviceKey
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.in_process import fake_meters, run_until

THIRTY_DAYS_4_METERS = 30 * 24 * 60 * 4  # 172,800 readings


def test_thirty_days_of_four_meters_fit_well_below_the_alarm(tmp_path: Path) -> None:
    signer = ProtocolSigner(DeviceKey.generate())
    ob = Outbox.open(tmp_path / "o.sqlite", new_device=True)
    try:
        n = 4000
        for start in range(0, n, 1000):
            ob.append_many(
                [(f"SDM630-{i % 4:07d}", MeterSample(1_700_000_000_000 + i * 15_000, 10**7 + i, 10**6 + i, 1500), 0)
                 for i in range(start, start + 1000)],
                signer,
            )
        ob._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        per_record = ob.size_bytes() / n
    finally:
        ob.close()
    projected_mb = per_record * THIRTY_DAYS_4_METERS / 1e6
    assert projected_mb < 100  # ~50 MB: fine on any SD card
    cfg = load_config(_write(tmp_path, config_text(tmp_path / "s")))
    assert cfg.outbox.alarm_records > THIRTY_DAYS_4_METERS  # the default never alarms on a healthy month


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "edge.toml"
    p.write_text(text)
    return p


async def test_disk_watermark_alarms_on_page_and_in_log_and_keeps_every_reading(
    tmp_path: Path, broker, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    text = config_text(tmp_path / "state", mqtt_port=broker.port).replace("min_free_mb = 0", "min_free_mb = 1000000")
    cfg = load_config(_write(tmp_path, text))
    meter = FakeMeterReader("WM-1")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    daemon = Daemon(cfg, fake_meters(meter), notifier=Notifier(str(tmp_path / "notify")), flush_on_stop_s=0.1)
    caplog.set_level(logging.WARNING)
    # a meter's reads are sequential and each is committed before the next starts: a third read means two stored
    snap = await run_until(daemon, lambda: meter.reads >= 3, 10)
    notes = []
    with sock:
        while True:
            try:
                notes.append(sock.recv(4096).decode())
            except BlockingIOError:
                break
    # systemd sees: ready, watchdog pings (with a status line), stopping
    assert any(n.startswith("READY=1") for n in notes)
    assert "WATCHDOG=1" in notes
    assert any(n.startswith("STATUS=") and "outbox" in n for n in notes)
    assert "STOPPING=1" in notes
    alarms = {a["key"]: a["message"] for a in snap["alarms"]}
    assert "disk_low" in alarms
    assert "disk almost full" in alarms["disk_low"]
    assert any("ALARM disk almost full" in r.getMessage() for r in caplog.records)
    assert snap["outbox"]["last_seq"] >= 2  # readings still committed: nothing dropped to make room
    assert meter.closed


async def test_status_port_in_use_does_not_stop_readings(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = load_config(_write(tmp_path, config_text(tmp_path / "state", mqtt_port=broker.port, status_port=port)))
        meter = FakeMeterReader("PT-1")
        daemon = Daemon(cfg, fake_meters(meter), flush_on_stop_s=0.1)
        snap = await run_until(daemon, lambda: meter.reads >= 2, 10)  # the first read is committed: see above
    assert snap["outbox"]["last_seq"] >= 1
    assert any(a["key"] == "status_page" for a in snap["alarms"])
