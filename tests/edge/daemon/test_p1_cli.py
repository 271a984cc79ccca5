"""``read --meter`` and ``scan`` on P1 meters through the real CLI, against ``python -m edge.simulator --p1-port``
(a separate process: the CLI runs its own event loop), plain and encrypted (Smarty, right and wrong key)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.daemon_proc import CHILD_ENV, REPO
from tests.services import free_port

KEY = "000102030405060708090a0b0c0d0e0f"


def _sim(tmp_path: Path, port: int, variant: str) -> subprocess.Popen[bytes]:
    key_file = tmp_path / "sim.key"
    key_file.write_text(KEY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.simulator", "--p1-port", str(port), "--p1-variant", variant, "--p1-key-file",
         str(key_file), "--p1-period", "0.2"],
        cwd=REPO, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    assert b'"ready": true' in proc.stdout.readline()
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def _config(tmp_path: Path, port: int, model: str, key: str | None = None) -> Path:
    meter = f'[[meter]]\nserial = "P1-CLI"\nbus = "p1"\nmodel = "{model}"\nstale_after_s = 3\n'
    if key is not None:
        (tmp_path / "meter.key").write_text(key)
        (tmp_path / "meter.key").chmod(0o600)
        meter += 'key_file = "meter.key"\n'
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "s") + f'\n[[bus]]\nname = "p1"\nkind = "p1-tcp"\nhost = "127.0.0.1"\n'
                   f"port = {port}\n\n{meter}")
    cfg.chmod(0o600)
    return cfg


@pytest.mark.parametrize(("variant", "model"), [("dsmr5", "iskraemeco-am550-nl"),
                                                ("luxembourg-smarty", "sagemcom-t210-d-lu")])
def test_read_and_scan_a_p1_meter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variant: str, model: str
) -> None:
    port = free_port()
    sim = _sim(tmp_path, port, variant)
    try:
        cfg = _config(tmp_path, port, model, KEY if variant == "luxembourg-smarty" else None)
        assert main(["--config", str(cfg), "read", "--meter", "P1-CLI"]) == 0
        out = capsys.readouterr().out
        assert "import  " in out
        assert " Wh" in out
        assert "against the gateway" in out  # the meter's clock
        assert main(["--config", str(cfg), "scan", "--port", "p1", "--listen", "3"]) == 0
        out = capsys.readouterr().out
        assert f"(map {model})" in out
        if variant == "luxembourg-smarty":
            assert KEY not in out
            (tmp_path / "meter.key").write_text(KEY[::-1])  # a wrong key: one clear line, no reading
            assert main(["--config", str(cfg), "read", "--meter", "P1-CLI"]) == 1
            out = capsys.readouterr().out
            assert "NO ANSWER: meter P1-CLI: no complete P1 telegram yet (cannot decrypt the telegram" in out
            assert KEY[::-1] not in out
            assert "import" not in out
    finally:
        _stop(sim)


def test_scan_a_silent_p1_port_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "s"))
    port = free_port()
    assert main(["--config", str(cfg), "scan", "--port", f"127.0.0.1:{port}", "--kind", "p1-tcp", "--listen",
                 "1"]) == 1
    assert "NO P1 STREAM: cannot connect to 127.0.0.1" in capsys.readouterr().out
