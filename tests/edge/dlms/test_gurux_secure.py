"""Ciphered DLMS against gurux's secure server (``GXDLMSSecureServer``) as the meter: LLS and HLS-GMAC, APDUs
authenticated and/or encrypted (security suite 0), TCP wrapper and HDLC on a pty; wrong keys; frame-counter replay
rejected by the meter and recovered by resync; counters never reused after a restart; pushed notifications."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.dlms.security import Keys
from edge.errors import MeterError
from edge.meters.config import BusConfig, BusKind, DlmsAuth, DlmsSecurity, MeterConfig
from edge.meters.dlms_reader import KeyCheckError
from edge.meters.factory import open_readers, read_once, scan
from edge.meters.frame_counters import FrameCounterStore
from edge.meters.maps import MeterMap, default_maps_dir, load_map
from edge.simulator.dlms_gurux import (
    DlmsHdlcSimulator,
    DlmsMeterModel,
    DlmsMeterSecurity,
    DlmsPushSender,
    DlmsTcpSimulator,
)
from edge.simulator.profiles import Kind, ManualClock, Profile, SimulatedRegisters
from edge.simulator.ptypair import PtyPair
from tests.services import free_port

EK, AK = bytes.fromhex("000102030405060708090a0b0c0d0e0f"), bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf")
METER_TITLE = bytes.fromhex("4C475A0012345678")
PASSWORD = b"lls-secret"


def make_model(clock: ManualClock, authentication: str, policy: int) -> DlmsMeterModel:
    state = SimulatedRegisters(Profile(Kind.PROSUMER, seed=7), clock.now - 86400, import_wh=9_000_000, export_wh=70_000)
    sec = DlmsMeterSecurity(ek=EK, ak=AK, system_title=METER_TITLE, authentication=authentication, policy=policy)
    return DlmsMeterModel(state, clock, password=PASSWORD, security=sec)


def tcp(port: int, **kw: float) -> BusConfig:
    params = {"timeout_s": 1.0, "retries": 0, **kw}
    return BusConfig(name="dlms", kind=BusKind.DLMS_TCP, host="127.0.0.1", port=port, **params)  # type: ignore[arg-type]


def meter(auth: DlmsAuth, security: DlmsSecurity, keys: Keys = Keys(EK, AK), **kw: int) -> MeterConfig:  # noqa: B008
    client = {DlmsAuth.NONE: 16, DlmsAuth.LOW: 17, DlmsAuth.HLS_GMAC: 1}[auth]
    return MeterConfig(serial="E450-1", bus="dlms", model="landis-gyr-e450", auth=auth, password=PASSWORD,
                       client_address=client, security=security, keys=keys, **kw)


CASES = [
    (DlmsAuth.LOW, DlmsSecurity.AUTH_ENC, "low", 0x30),
    (DlmsAuth.HLS_GMAC, DlmsSecurity.NONE, "high-gmac", 0x00),
    (DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH, "high-gmac", 0x10),
    (DlmsAuth.HLS_GMAC, DlmsSecurity.ENC, "high-gmac", 0x20),
    (DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC, "high-gmac", 0x30),
]


@pytest.mark.parametrize(("auth", "sec", "sim_auth", "policy"), CASES, ids=[f"{a}-{s}" for a, s, _, _ in CASES])
async def test_reads_exactly_over_tcp(
    auth: DlmsAuth, sec: DlmsSecurity, sim_auth: str, policy: int, clock: ManualClock, maps: dict[str, MeterMap],
    tmp_path: Path,
) -> None:
    model = make_model(clock, sim_auth, policy)
    store = FrameCounterStore(tmp_path / "fc.sqlite")
    port = free_port()
    async with DlmsTcpSimulator(model, port=port), open_readers(
        [tcp(port)], [meter(auth, sec)], maps, clock=lambda: int(clock.now * 1000), counters=store
    ) as readers:
        s = await readers["E450-1"].read()
        assert (s.import_wh, s.export_wh) == (model.state.import_wh, model.state.export_wh)
        clock.advance(600)
        later = await readers["E450-1"].read()
        assert later.export_wh > s.export_wh
    assert model.security is not None
    assert model.security.rejected == 0
    if policy or auth is DlmsAuth.HLS_GMAC:
        # Every counter we used was stored first; the meter saw them strictly increasing.
        assert store.peek("E450-1") == model.security.next_client_counter > 1
    store.close()


async def test_meter_refuses_less_security_than_configured(
    clock: ManualClock, maps: dict[str, MeterMap], tmp_path: Path
) -> None:
    model = make_model(clock, "high-gmac", 0x30)
    port = free_port()
    store = FrameCounterStore(tmp_path / "fc.sqlite")
    async with DlmsTcpSimulator(model, port=port):
        with pytest.raises(KeyCheckError, match="E450-1"):
            await read_once(tcp(port), meter(DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH), maps, counters=store)
    store.close()


async def test_hdlc_on_a_pty_with_hls_and_ciphering(clock: ManualClock, maps: dict[str, MeterMap],
                                                    tmp_path: Path) -> None:
    model = make_model(clock, "high-gmac", 0x30)
    store = FrameCounterStore(tmp_path / "fc.sqlite")
    async with PtyPair() as pair, DlmsHdlcSimulator(model, device=pair.a, physical=17, max_info=64):
        bus = BusConfig(name="dlms", kind=BusKind.DLMS_HDLC, device=pair.b, timeout_s=1.0, retries=0)
        m = meter(DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC, physical_address=17)
        async with open_readers([bus], [m], maps, clock=lambda: int(clock.now * 1000), counters=store) as rd:
            s = await rd["E450-1"].read()
            assert (s.import_wh, s.export_wh) == (model.state.import_wh, model.state.export_wh)
    store.close()


@pytest.mark.parametrize("policy", [0x30, 0x00], ids=["auth-enc", "hls-only"])
@pytest.mark.parametrize("which", ["ek", "ak"])
async def test_wrong_key_is_one_clear_line_and_no_reading(
    which: str, policy: int, clock: ManualClock, maps: dict[str, MeterMap], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = make_model(clock, "high-gmac", policy)
    bad = bytes.fromhex("ffeeddccbbaa99887766554433221100")
    keys = Keys(bad, AK) if which == "ek" else Keys(EK, bad)
    store = FrameCounterStore(tmp_path / "fc.sqlite")
    port = free_port()
    caplog.set_level(logging.DEBUG)
    async with DlmsTcpSimulator(model, port=port):
        reads = model.reads
        sec = DlmsSecurity.AUTH_ENC if policy else DlmsSecurity.NONE
        with pytest.raises(KeyCheckError) as err:
            await read_once(tcp(port, retries=2), meter(DlmsAuth.HLS_GMAC, sec, keys), maps, counters=store)
        assert model.reads == reads  # no register was read, no reading made up
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("meter E450-1:")
    assert "keys_file" in text or "key check" in text
    for secret in (bad, EK, AK):
        assert secret.hex() not in text
        assert secret.hex() not in caplog.text
    store.close()


async def test_replayed_frame_counter_is_rejected_then_resynchronised(
    clock: ManualClock, maps: dict[str, MeterMap], tmp_path: Path
) -> None:
    model = make_model(clock, "high-gmac", 0x30)
    assert model.security is not None
    port = free_port()
    m = meter(DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC)
    async with DlmsTcpSimulator(model, port=port):
        first = FrameCounterStore(tmp_path / "a" / "fc.sqlite")
        await read_once(tcp(port), m, maps, counters=first)
        used = model.security.next_client_counter
        first.close()
        # The gateway's state is lost (a replaced SD card): a fresh store starts again at 1, below what the meter
        # accepts. The meter rejects it; the reader reads the frame counter and continues above it.
        fresh = FrameCounterStore(tmp_path / "b" / "fc.sqlite")
        s = await read_once(tcp(port), m, maps, counters=fresh)
        assert s.import_wh == model.state.import_wh
        assert model.security.rejected == 1
        assert fresh.peek("E450-1") > used
        fresh.close()


def test_counters_are_never_reused_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "fc.sqlite"
    seen: list[int] = []
    for _ in range(5):  # each "restart" drops the in-memory block as a kill -9 would
        store = FrameCounterStore(path, block=4)
        seen.extend(store.next_counter("M") for _ in range(3))
        store.close()
    assert seen == sorted(set(seen))
    store = FrameCounterStore(path, block=4)
    store.resync("M", 10)  # resync never moves down
    assert store.next_counter("M") > max(seen)
    store.resync("M", 1000)
    assert store.next_counter("M") == 1000
    store.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(imp=st.integers(0, 2**64 - 1), exp=st.integers(0, 2**64 - 1), power=st.integers(-(2**31), 2**31 - 1))
def test_wh_equals_the_register_exactly(
    imp: int, exp: int, power: int, clock: ManualClock, maps: dict[str, MeterMap],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    model = make_model(clock, "high-gmac", 0x30)
    model.pinned = {"energy_import": imp, "energy_export": exp, "power_active": power, "voltage_l1": 2300}
    store = FrameCounterStore(tmp_path_factory.mktemp("fc") / "fc.sqlite")

    async def run() -> None:
        port = free_port()
        async with DlmsTcpSimulator(model, port=port):
            s = await read_once(tcp(port), meter(DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC), maps, counters=store)
        assert (s.import_wh, s.export_wh, s.power_w) == (imp, exp, power)

    asyncio.run(run())
    store.close()


def push_bus(port: int, timeout_s: float = 5.0) -> BusConfig:
    return BusConfig(name="push", kind=BusKind.DLMS_PUSH, host="127.0.0.1", port=port, timeout_s=timeout_s)


def push_meter(keys: Keys = Keys(EK, AK)) -> MeterConfig:  # noqa: B008
    return MeterConfig(serial="MA309-1", bus="push", model="kaifa-ma309-push", keys=keys,
                       meter_system_title=METER_TITLE)


async def wait_for(cond: object, within_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within_s
    while not cond():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.02)


async def test_pushed_notifications_latest_is_taken_replay_dropped_stop_is_down(
    clock: ManualClock, maps: dict[str, MeterMap]
) -> None:
    model = make_model(clock, "none", 0x30)
    port = free_port()
    async with open_readers([push_bus(port, timeout_s=0.5)], [push_meter()], maps,
                            clock=lambda: int(clock.now * 1000)) as readers:
        reader = readers["MA309-1"]
        with pytest.raises(MeterError, match="no push received for ever"):
            await reader.read()
        async with DlmsPushSender(model, host="127.0.0.1", port=port) as sender:
            await sender.push()
            clock.advance(30)
            last = await sender.push()
            await wait_for(lambda: _received(readers) == 2)
            s = await reader.read()
            assert (s.import_wh, s.export_wh) == (model.state.import_wh, model.state.export_wh)  # the latest one
            assert s.timestamp_ms == int(clock.now * 1000)
            clock.advance(30)
            await sender.send(last)  # a replayed notification: dropped, the reading stays the older one
            await wait_for(lambda: _dropped(readers) == 1)
            again = await reader.read()
            assert again.import_wh == s.import_wh
        await asyncio.sleep(0.6)  # the stream stopped: DOWN with the reason
        with pytest.raises(MeterError, match="no push received for"):
            await reader.read()


async def test_pushed_notification_with_a_wrong_key(clock: ManualClock, maps: dict[str, MeterMap]) -> None:
    model = make_model(clock, "none", 0x30)
    port = free_port()
    wrong = Keys(EK, bytes(16))
    async with open_readers([push_bus(port)], [push_meter(wrong)], maps, clock=lambda: int(clock.now * 1000)) as rd:
        async with DlmsPushSender(model, host="127.0.0.1", port=port) as sender:
            await sender.push()
            await wait_for(lambda: _dropped(rd) == 1)
        with pytest.raises(KeyCheckError, match=r"^meter MA309-1: key check failed") as err:
            await rd["MA309-1"].read()
        assert "\n" not in str(err.value)


async def test_a_push_recorded_before_a_restart_is_still_a_replay_after_it(
    clock: ManualClock, maps: dict[str, MeterMap], tmp_path: Path
) -> None:
    """The last pushed counter used to live only in memory: a notification recorded off the LAN and sent again after
    the gateway restarted was taken as the meter's reading. Now the counter of the notification a reading came from
    is stored beside our own frame counters (per key pair: new keys restart a meter's counter)."""
    model = make_model(clock, "none", 0x30)
    path = tmp_path / "counters.sqlite"
    store = FrameCounterStore(path)
    now = lambda: int(clock.now * 1000)  # noqa: E731
    try:
        port = free_port()
        async with (
            open_readers([push_bus(port)], [push_meter()], maps, clock=now, counters=store) as readers,
            DlmsPushSender(model, host="127.0.0.1", port=port) as sender,
        ):
            recorded = await sender.push()
            await wait_for(lambda: _received(readers) == 1)
            first = await readers["MA309-1"].read()
        store.close()
        store = FrameCounterStore(path)  # the gateway restarted
        port = free_port()
        async with (
            open_readers([push_bus(port)], [push_meter()], maps, clock=now, counters=store) as readers,
            DlmsPushSender(model, host="127.0.0.1", port=port) as sender,
        ):
            await sender.send(recorded)
            await wait_for(lambda: _dropped(readers) == 1)
            with pytest.raises(MeterError, match="replayed"):
                await readers["MA309-1"].read()
            clock.advance(30)
            await sender.push()  # the meter's next notification is taken
            await wait_for(lambda: _received(readers) == 1)
            assert (await readers["MA309-1"].read()).import_wh >= first.import_wh
        assert store.peer_counter("MA309-1", Keys(EK, AK).key_id) > 0
        assert store.peer_counter("MA309-1", Keys(bytes(16), AK).key_id) == -1  # new keys start over
    finally:
        store.close()


def _latest(readers: dict[str, object]) -> object:
    bus = readers["MA309-1"]._bus  # type: ignore[attr-defined]
    return bus.latest("MA309-1")


def _received(readers: dict[str, object]) -> int:
    return int(_latest(readers).received_count)  # type: ignore[attr-defined]


def _dropped(readers: dict[str, object]) -> int:
    return int(_latest(readers).dropped)  # type: ignore[attr-defined]


def test_replace_keeps_keys_out_of_repr() -> None:
    m = replace(meter(DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC))
    assert EK.hex() not in repr(m)
    assert AK.hex() not in repr(m)


async def test_scan_names_a_ciphered_meter_by_its_logical_device_name_and_says_why_not_otherwise(
    clock: ManualClock, maps: dict[str, MeterMap]
) -> None:
    model = make_model(clock, "high-gmac", 0x30)
    port = free_port()
    async with DlmsTcpSimulator(model, port=port):
        # Without a logical device name the public client can read nothing the maps probe: not named, and why.
        hits = await scan(tcp(port, timeout_s=0.5), maps, [1, 2])
        assert [(h.address, h.map_ids) for h in hits] == [(1, ())]
        assert "read-write denied" in hits[0].reason
        assert "ciphered meter?" in hits[0].reason
        model.logical_device_name = b"LGZ0012345678"
        hits = await scan(tcp(port, timeout_s=0.5), maps, [1])
        assert [(h.address, h.map_ids) for h in hits] == [(1, ("landis-gyr-e450",))]
        model.logical_device_name = b"XYZ0012345678"
        hits = await scan(tcp(port, timeout_s=0.5), maps, [1])
        assert hits[0].map_ids == ()
        assert "expected it to start with 'LGZ'" in hits[0].reason


@pytest.mark.parametrize("meter_obis", ["0.0.43.1.1.255", "0.0.43.1.0.255"])
async def test_resync_reads_the_frame_counter_the_map_names(
    meter_obis: str, clock: ManualClock, tmp_path: Path
) -> None:
    # A model whose counter object is 0-0:43.1.1.255: the map says so, and resync reads that object.
    text = (default_maps_dir() / "landis-gyr-e450.toml").read_text()
    (tmp_path / "e450-fc1.toml").write_text(
        text.replace('id = "landis-gyr-e450"', 'id = "e450-fc1"').replace('"0.0.43.1.0.255"', '"0.0.43.1.1.255"')
    )
    maps = {"e450-fc1": load_map(tmp_path / "e450-fc1.toml")}
    assert maps["e450-fc1"].frame_counter is not None
    assert maps["e450-fc1"].frame_counter.obis == (0, 0, 43, 1, 1, 255)
    model = make_model(clock, "high-gmac", 0x30)
    assert model.security is not None
    model.security.frame_counter_obis = meter_obis
    model.security.next_client_counter = 5000  # the meter has seen counters up to 4999 from another gateway
    m = replace(meter(DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC), model="e450-fc1")
    store = FrameCounterStore(tmp_path / "fc.sqlite")
    port = free_port()
    async with DlmsTcpSimulator(model, port=port):
        if meter_obis == "0.0.43.1.1.255":
            s = await read_once(tcp(port), m, maps, counters=store)
            assert s.import_wh == model.state.import_wh
            assert store.peek("E450-1") > 5000
        else:  # the meter keeps its counter elsewhere than the map says: one clear line, no reading
            with pytest.raises(KeyCheckError, match=r"frame counter 0\.0\.43\.1\.1\.255 cannot be read"):
                await read_once(tcp(port), m, maps, counters=store)
    store.close()


def test_ensure_reserves_ahead_so_a_session_does_not_touch_the_disk(tmp_path: Path) -> None:
    store = FrameCounterStore(tmp_path / "fc.sqlite", block=8)
    store.ensure("M", 20)  # more than a block: reserved in one go
    reserved = store._reserved("M")
    assert reserved >= 21
    used = [store.next_counter("M") for _ in range(20)]
    assert store._reserved("M") == reserved  # no further reservation was needed
    assert used == list(range(1, 21))
    store.close()


def test_two_processes_sharing_the_store_never_share_a_counter(tmp_path: Path) -> None:
    # The daemon and a `read --meter` beside it: each reserves its own blocks in the same file.
    daemon, cli = FrameCounterStore(tmp_path / "fc.sqlite", block=4), FrameCounterStore(tmp_path / "fc.sqlite", block=4)
    used: list[int] = []
    for _ in range(6):
        used += [daemon.next_counter("M"), cli.next_counter("M")]
        daemon.ensure("M", 3)
        cli.ensure("M", 5)
    assert len(used) == len(set(used))
    daemon.close()
    cli.close()
