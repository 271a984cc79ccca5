"""`read --meter` and `scan` for ciphered DLMS meters, against ``python -m edge.simulator`` (gurux's secure server
and its push sender) in its own process: exact values, frame counters kept in the state directory across commands,
a wrong key is one line and no reading, and nothing secret is printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.meters.frame_counters import FrameCounterStore
from tests.edge.daemon.daemon_config import DLMS_SERIAL, config_text, dlms_ciphered
from tests.edge.daemon.daemon_proc import SimProcess
from tests.services import free_port

EK_HEX = bytes(range(16)).hex()
AK_HEX = bytes(range(0xD0, 0xE0)).hex()


def test_read_and_scan_a_ciphered_meter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port, dlms_port, push_port = free_port(), free_port(), free_port()
    toml, sim_args = dlms_ciphered(tmp_path, dlms_port)
    keys = tmp_path / f"{DLMS_SERIAL}.keys.toml"
    push = (f'\n[[bus]]\nname = "push"\nkind = "dlms-push"\nhost = "127.0.0.1"\nport = {push_port}\ntimeout_ms = 5000\n'
            f'\n[[meter]]\nserial = "KFM-1"\nbus = "push"\nmodel = "kaifa-ma309-push"\n'
            f'meter_system_title = "4B464D0000000309"\nkeys_file = "{keys}"\n')
    cfg = tmp_path / "edge.toml"
    state = tmp_path / "s"
    cfg.write_text(config_text(state) + toml + push)
    cfg.chmod(0o600)
    sim = SimProcess(port, 1, extra=(*sim_args, "--dlms-push", f"127.0.0.1:{push_port}", "--dlms-push-period", "0.5"))
    try:
        for _ in range(2):  # two separate commands: the second continues the counters the first stored
            assert main(["--config", str(cfg), "read", "--meter", DLMS_SERIAL]) == 0
            out = capsys.readouterr().out
            assert "import" in out
            assert " Wh" in out
        store = FrameCounterStore.in_state_dir(state)
        assert store.peek(DLMS_SERIAL) > 256  # the second command started above the first one's reserved block
        store.close()
        assert main(["--config", str(cfg), "read", "--meter", "KFM-1"]) == 0  # waits for the next push
        assert " Wh" in capsys.readouterr().out
        assert main(["--config", str(cfg), "scan", "--port", "dlms-ciphered", "--ids", "1-2"]) == 0
        out = capsys.readouterr().out
        assert "unit   1: Landis+Gyr E450" in out
        # A wrong key: one clear line, exit 1, no reading, no key material.
        keys.write_text(f'ek = "{AK_HEX}"\nak = "{AK_HEX}"\n')
        assert main(["--config", str(cfg), "read", "--meter", DLMS_SERIAL]) == 1
        out = capsys.readouterr().out
        no_answer = [line for line in out.splitlines() if line.startswith("NO ANSWER")]
        assert no_answer == out.splitlines()[1:]  # nothing but the header and that line
        assert f"meter {DLMS_SERIAL}:" in no_answer[0]
        assert "import" not in out
        for secret in (EK_HEX, AK_HEX):
            assert secret not in out
    finally:
        sim.stop()
    stats = json.loads((tmp_path / "sim-stats.json").read_text())
    assert stats["push"]["pushes"] > 0
