"""The status page of a running daemon in headless Chromium, at phone size."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from edge.config import load_config
from edge.daemon import Daemon
from edge.meter_setup import meter_source
from edge.simulator.modbus import ModbusSimulator
from tests.edge.daemon.central_peer import CentralPeer
from tests.edge.daemon.daemon_config import PASSWORD, config_text, meters_toml, sim_meters
from tests.services import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def _until_records(central: CentralPeer, n: int) -> None:
    async with asyncio.timeout(15):
        while len(central.records) < n:  # noqa: ASYNC110 - the peer lives in paho's thread, no event to await
            await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="apt-get install -y chromium")
async def test_status_page_in_chromium_on_a_phone(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    sim_port = free_port()
    src = tmp_path / "edge.toml"
    src.write_text(
        config_text(tmp_path / "state", mqtt_port=broker.port) + meters_toml(sim_port, ["PV-ROOF", "NO-SUCH"])
    )
    cfg = load_config(src)
    daemon = Daemon(cfg, meter_source(cfg))
    stop = asyncio.Event()
    with CentralPeer(broker.host, broker.port) as central:
        async with ModbusSimulator.tcp(sim_meters(1), port=sim_port), async_playwright() as pw:  # type: ignore[arg-type]
            task = asyncio.create_task(daemon.run(stop))
            try:
                await asyncio.wait_for(daemon.ready.wait(), 10)
                await _until_records(central, 2)
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    url = f"http://127.0.0.1:{daemon.web_port}/"
                    anon = await browser.new_context()
                    assert (await anon.request.get(url)).status == 401  # no password, no page
                    wrong = await browser.new_context(http_credentials={"username": "tech", "password": "wrong-pw"})
                    denied = await (await wrong.new_page()).goto(url)
                    assert denied is not None
                    assert denied.status == 401
                    await anon.close()
                    await wrong.close()
                    ctx = await browser.new_context(
                        viewport={"width": 390, "height": 844},
                        http_credentials={"username": "tech", "password": PASSWORD},
                    )
                    page = await ctx.new_page()
                    resp = await page.goto(url)
                    assert resp is not None
                    assert resp.status == 200
                    assert daemon.board is not None
                    assert await page.text_content("#device-id") == daemon.board.device_id
                    assert await page.locator("#device svg").count() == 1  # QR code
                    assert await page.locator("table.meter").count() == 2
                    pv = page.locator("table.meter[data-serial='PV-ROOF']")
                    assert "up" in (await pv.locator(".badge").first.text_content() or "")
                    assert "kWh" in (await pv.text_content() or "")
                    dead = page.locator("table.meter[data-serial='NO-SUCH']")
                    await page.wait_for_timeout(1200)
                    await page.reload()
                    assert "DOWN" in (await dead.text_content() or "")
                    assert "connected" in (await page.text_content("#mqtt-state") or "")
                    assert "never" not in (await page.text_content("#last-ack") or "")
                    # fits a phone: no horizontal scrolling
                    width = await page.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390
                    # the page refreshes itself
                    refresh = await page.get_attribute("meta[http-equiv='refresh']", "content")
                    assert refresh == "2"
                    api = await ctx.request.get(f"http://127.0.0.1:{daemon.web_port}/api/status")
                    assert (await api.json())["device_id"] == daemon.board.device_id
                    await ctx.close()
                finally:
                    await browser.close()
            finally:
                stop.set()
                await asyncio.wait_for(task, 15)
