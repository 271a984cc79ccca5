"""The edge benchmark still runs against the outbox's current rules: bench/ is not part of ``make test``, and a rule
the benchmark's synthetic readings broke (registers restarting at 0 are refused as a register that fell) once
stopped it with a traceback unnoticed. A short setting, a few seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_edge_benchmark_runs_and_prints_its_figures() -> None:
    run = subprocess.run(
        [sys.executable, "bench/edge.py", "--skip-steady", "--backlog", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "baseline (same run)" in run.stdout
    assert run.stdout.count("readings/s") == 3  # single and batched commits, the backlog drain
