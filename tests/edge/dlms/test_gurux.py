"""Our DLMS client against gurux-dlms acting as the meter: TCP wrapper and HDLC on a pty pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.dlms.client import DlmsClient
from edge.dlms.errors import AssociationRejectedError
from edge.dlms.transport import TcpWrapperTransport
from edge.errors import MeterError
from edge.meters.config import BusConfig, BusKind, DlmsAuth, MeterConfig
from edge.meters.factory import open_readers, read_once, scan
from edge.meters.maps import MeterMap, default_maps_dir, load_map
from edge.simulator.dlms_gurux import DlmsHdlcSimulator, DlmsMeterModel, DlmsTcpSimulator
from edge.simulator.profiles import Kind, ManualClock, Profile, SimulatedRegisters
from edge.simulator.ptypair import PtyPair
from tests.edge.meters.meter_helpers import NOON
from tests.services import free_port

PASSWORD = b"lls-test-pw"


@pytest.fixture
def model(clock: ManualClock) -> DlmsMeterModel:
    state = SimulatedRegisters(Profile(Kind.PROSUMER, seed=5), clock.now - 86400, import_wh=7_000_000, export_wh=50_000)
    return DlmsMeterModel(state, clock, password=PASSWORD)


def tcp(port: int, **kw: float) -> BusConfig:
    params = {"timeout_s": 1.0, **kw}
    return BusConfig(name="dlms", kind=BusKind.DLMS_TCP, host="127.0.0.1", port=port, **params)  # type: ignore[arg-type]


def meter(auth: DlmsAuth = DlmsAuth.LOW, password: bytes = PASSWORD, **kw: int) -> MeterConfig:
    client = 17 if auth is DlmsAuth.LOW else 16
    return MeterConfig(serial="D1", bus="dlms", model="dlms-generic", auth=auth, password=password,
                       client_address=client, **kw)


async def test_tcp_reader_with_lls(model: DlmsMeterModel, maps: dict[str, MeterMap], clock: ManualClock) -> None:
    port = free_port()
    async with DlmsTcpSimulator(model, port=port), open_readers(
        [tcp(port)], [meter()], maps, clock=lambda: int(clock.now * 1000)
    ) as readers:
        s = await readers["D1"].read()
        assert (s.import_wh, s.export_wh) == (model.state.import_wh, model.state.export_wh)
        assert s.power_w is not None
        assert s.power_w < -1000  # a prosumer at noon exports
        assert s.timestamp_ms == NOON * 1000
        clock.advance(900)
        later = await readers["D1"].read()
        assert later.export_wh > s.export_wh


async def test_lowest_level_and_wrong_password(model: DlmsMeterModel, maps: dict[str, MeterMap]) -> None:
    port = free_port()
    async with DlmsTcpSimulator(model, port=port):
        public = await read_once(tcp(port), meter(DlmsAuth.NONE, b""), maps)
        assert public.import_wh == model.state.import_wh
        reads_before = model.reads
        with pytest.raises(MeterError, match="authentication failure") as err:
            await read_once(tcp(port, retries=2), meter(password=b"wrong-password"), maps)
        assert isinstance(err.value.__cause__, AssociationRejectedError)
        assert "wrong-password" not in str(err.value)
        assert model.reads == reads_before  # nothing read, and a refusal is not retried


async def test_scaler_is_applied_and_unit_checked(model: DlmsMeterModel, tmp_path: Path) -> None:
    # Energy reported in 0.1 kWh steps (scaler +2 on Wh): the reader multiplies back to Wh.
    model.registers = {
        "1.0.1.8.0.255": (2, 30, "energy_import"),
        "1.0.2.8.0.255": (2, 30, "energy_export"),
        "1.0.16.7.0.255": (0, 27, "power_active"),
        "1.0.32.7.0.255": (-1, 35, "voltage_l1"),
    }
    maps = {"dlms-generic": load_map(default_maps_dir() / "dlms-generic.toml")}
    port = free_port()
    async with DlmsTcpSimulator(model, port=port):
        s = await read_once(tcp(port), meter(), maps)
        assert s.import_wh == model.state.import_wh // 100 * 100
        # A map that expects a different unit than the meter reports is refused, not converted.
        text = (default_maps_dir() / "dlms-generic.toml").read_text()
        bad = tmp_path / "dlms-generic.toml"
        bad.write_text(text + '\n[measurements.current_l1]\nobis = "1.0.32.7.0.255"\nunit = "A"\n')
        with pytest.raises(MeterError, match="unit code 35"):
            await read_once(tcp(port), meter(), {"dlms-generic": load_map(bad)})


async def test_silent_meter_is_retried_then_fails(model: DlmsMeterModel, maps: dict[str, MeterMap]) -> None:
    port = free_port()
    model.online = False
    async with DlmsTcpSimulator(model, port=port):
        with pytest.raises(MeterError, match=r"D1 .*did not answer after 2 attempt"):
            await read_once(tcp(port, timeout_s=0.2, retries=1, backoff_s=0.01), meter(), maps)


async def test_undefined_object_is_reported(model: DlmsMeterModel) -> None:
    port = free_port()
    async with DlmsTcpSimulator(model, port=port):
        t = TcpWrapperTransport("127.0.0.1", port, 16, 1, timeout=1)
        await t.open()
        try:
            c = DlmsClient(t)
            await c.associate()
            with pytest.raises(MeterError, match="object undefined"):
                await c.get(3, (1, 0, 99, 99, 0, 255), 2)
            await c.release()
        finally:
            await t.close()


async def test_tcp_scan(model: DlmsMeterModel, maps: dict[str, MeterMap]) -> None:
    port = free_port()
    async with DlmsTcpSimulator(model, port=port):
        hits = await scan(tcp(port, timeout_s=1.0), maps, [1, 2])  # more DLMS maps probe now: room for a loaded CI
    assert [(h.address, h.map_ids) for h in hits] == [(1, ("dlms-generic",))]


async def test_hdlc_on_a_pty_with_segmentation(
    model: DlmsMeterModel, maps: dict[str, MeterMap], clock: ManualClock
) -> None:
    # max_info 32 forces segmentation both ways: the LLS AARQ (~60 bytes) and the AARE are split into frames.
    async with PtyPair() as pair, DlmsHdlcSimulator(model, device=pair.a, physical=17, max_info=32) as sim:
        received: list[bytes] = []
        sim.on_bytes = received.append
        bus = BusConfig(name="dlms", kind=BusKind.DLMS_HDLC, device=pair.b, timeout_s=1.0)
        async with open_readers([bus], [meter(physical_address=17)], maps, clock=lambda: int(clock.now * 1000)) as rd:
            s = await rd["D1"].read()
            assert (s.import_wh, s.export_wh) == (model.state.import_wh, model.state.export_wh)
            clock.advance(60)
            assert (await rd["D1"].read()).import_wh >= s.import_wh
        stream = b"".join(received)
        assert b"\x7e\xa8" in stream  # the client sent segmented I-frames (format byte with the S bit)
        hits = await scan(BusConfig(name="dlms", kind=BusKind.DLMS_HDLC, device=pair.b, timeout_s=0.3), maps, [16, 17])
        assert [(h.address, h.map_ids) for h in hits] == [(17, ("dlms-generic",))]
        # A meter at another physical address stays silent: the read fails, no reading is made up.
        wrong = BusConfig(name="dlms", kind=BusKind.DLMS_HDLC, device=pair.b, timeout_s=0.2, retries=0)
        with pytest.raises(MeterError, match="did not answer"):
            await read_once(wrong, meter(physical_address=18), maps)
