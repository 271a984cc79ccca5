"""The outbox database is lost but the key is kept: the daemon resynchronises its chain with central by itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config
from edge.daemon import Daemon
from edge.meters.fake import FakeMeterReader
from protocol.record import decode_reading
from tests.edge.daemon.central_peer import CentralPeer
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.in_process import fake_meters, run_until


async def _run(cfg_path: Path, central: CentralPeer, at_least: int) -> Daemon:
    cfg = load_config(cfg_path)
    meter = FakeMeterReader("RS-1", clock_ms=len(central.records) * 1000)
    daemon = Daemon(cfg, fake_meters(meter), flush_on_stop_s=2)
    await run_until(daemon, lambda: len(central.records) >= at_least, 20)
    return daemon


def _lose(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


@pytest.mark.slow
async def test_lost_database_resyncs_chain_without_operator(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "edge.toml"
    src.write_text(config_text(tmp_path / "state", mqtt_port=broker.port))
    db = tmp_path / "state" / "outbox.sqlite"
    with CentralPeer(broker.host, broker.port) as central:
        first = await _run(src, central, 3)
        before = len(central.records)
        _lose(db)  # SD card trouble: the outbox is gone, the key is not
        second = await _run(src, central, before + 3)
    assert first.board is not None
    assert second.board is not None
    assert first.board.device_id == second.board.device_id
    assert central.conflicts == []
    assert central.errors == []
    n = central.check_chain()  # seq 1..N without a gap or a fork across the loss
    assert n >= before + 3
    assert len({decode_reading(r).device_id for r in central.records.values()}) == 1
