"""Helpers for tests that run real services (imported by test modules, benchmarks and ``tests/conftest.py``, whose
``broker``/``broker_factory`` fixtures use them): free ports, waiting for a port, a private Mosquitto process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until something answers on ``host:port``; TimeoutError after ``timeout`` s, or at once when ``proc`` (the
    process that should answer) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        if proc is not None and proc.poll() is not None:
            raise TimeoutError(f"nothing answers on {host}:{port}: the process exited ({proc.returncode})")
        time.sleep(0.05)
    raise TimeoutError(f"nothing answers on {host}:{port}")


def mosquitto(conf: Path) -> subprocess.Popen[bytes]:
    """A Mosquitto process on configuration file ``conf``, its output discarded (stop it with :func:`terminate`)."""
    return subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def terminate(proc: subprocess.Popen[bytes], timeout: float = 5.0, kill_timeout: float | None = 5.0) -> None:
    """Stop a child by its PID if it still runs: SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=kill_timeout)


@dataclass
class Broker:
    """A private Mosquitto process. ``stop()``/``start()`` simulate an outage on the same port."""

    port: int
    workdir: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "log_dest none\n"
        )
        self.proc = mosquitto(conf)
        wait_port(self.host, self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
