"""Test helper for the central crash tests: run a worker script in its own Python process that SIGKILLs itself at
a named point, and check that it died that way (not by an error, not by finishing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_until_killed(script: Path, args: list[str], *, import_dir: Path, timeout_s: float = 60) -> None:
    """Run ``script`` with ``args`` (the repository and ``import_dir`` on ``PYTHONPATH``); it must end by SIGKILL.
    A worker still running after ``timeout_s`` is killed by its PID and the check fails."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{import_dir}"}
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
