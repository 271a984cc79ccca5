"""The demo's processes: started with their output in log files, each in its own session (Ctrl-C reaches only the
demo, which then stops them in reverse order), and stopped by PID — SIGTERM, then SIGKILL after a grace period."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class ProcessFailedError(RuntimeError):
    """A demo process exited early or did not become ready; the message names its log file."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line[:300] for line in text[-lines:])

    def check(self) -> None:
        if not self.alive():
            raise ProcessFailedError(
                f"{self.name} (pid {self.pid}) exited with code {self.popen.returncode}; log {self.log}:\n{self.tail()}"
            )

    def stop(self, grace_s: float = 10.0) -> int | None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        return self.popen.returncode


@dataclass
class Processes:
    """Every process the demo started, stopped by PID in reverse start order."""

    log_dir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, cwd: Path | None = None) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=cwd,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> list[tuple[str, int, int | None]]:
        """Stops every process (a second Ctrl-C meanwhile turns SIGTERM into SIGKILL, but never skips one)."""
        stopped: list[tuple[str, int, int | None]] = []
        for proc in reversed(self.procs):
            try:
                stopped.append((proc.name, proc.pid, proc.stop()))
            except KeyboardInterrupt:
                stopped.append((proc.name, proc.pid, proc.stop(grace_s=0)))
        self.procs.clear()
        return stopped


def wait_until_port(proc: Proc, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc.check()
        if port_answers(port):
            return
        time.sleep(0.1)
    raise ProcessFailedError(f"{proc.name} did not open port {port} within {timeout_s:.0f} s; log {proc.log}:\n"
                             f"{proc.tail()}")


def wait_until_http(proc: Proc, url: str, timeout_s: float) -> None:
    """Wait until ``url`` answers 200 (e.g. ``/readyz``)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        proc.check()
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise ProcessFailedError(f"{proc.name} not ready at {url} within {timeout_s:.0f} s ({last}); log {proc.log}:\n"
                             f"{proc.tail()}")


def wait_for_line(proc: Proc, needle: str, timeout_s: float) -> str:
    """Wait until the process's log holds a line containing ``needle``; returns that line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in proc.log.read_text(encoding="utf-8", errors="replace").splitlines():
                if needle in line:
                    return line
        proc.check()
        time.sleep(0.1)
    raise ProcessFailedError(f"{proc.name} did not print {needle!r} within {timeout_s:.0f} s; log {proc.log}:\n"
                             f"{proc.tail()}")
