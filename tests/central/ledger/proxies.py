"""JSON-RPC front-end processes for the failover tests (``rpc_proxy_proc``), each stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.services import free_port, wait_port

ROOT = Path(__file__).resolve().parents[3]


class Proxies:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, upstream: str, *extra: str) -> tuple[str, subprocess.Popen[bytes]]:
        """A front end on a free port forwarding to ``upstream`` (``extra``: e.g. ``--hold-after N --log FILE``)."""
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tests.central.ledger.rpc_proxy_proc", "--upstream", upstream,
                                 "--port", str(port), *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.procs.append(proc)
        wait_port("127.0.0.1", port, timeout=20)
        return f"http://127.0.0.1:{port}", proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def held_by(log: Path) -> list[tuple[str, str]]:
    """(forwarded|dropped, signature) of every submission a holding front end held."""
    if not log.exists():
        return []
    return [(w[0], w[1]) for w in (line.split() for line in log.read_text().splitlines()) if len(w) == 2]
