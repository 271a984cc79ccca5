"""A leader that is alive but frozen (SIGSTOP: its kernel still answers TCP keepalives) loses its sticky leadership
once its lease runs out, and another node takes over; while it runs, a step longer than the lease keeps it (the
heartbeat); when it wakes up, its next round competes again instead of failing (central/db/leadership.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from central.db.leadership import SessionLock
from central.locks import ACCOUNTANT
from tests.services import terminate

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
LEASE_S = 1.0


def _rounds(log: Path) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("round ")]


async def _until(what: str, check: Callable[[], bool], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"not within {limit_s} s: {what}"
        await asyncio.sleep(0.1)


async def _contend(lock: SessionLock) -> bool:
    async with lock.hold() as held:
        return held


@pytest.fixture
def holder(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The leader's process: rounds whose step lasts three leases; stopped by its PID (woken first if frozen)."""
    log = tmp_path / "holder.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "lease_holder.py"), pg_dsn, str(LEASE_S), str(3 * LEASE_S)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        terminate(proc)


async def test_a_frozen_leader_loses_its_lease_and_competes_again_when_it_wakes(
    pg_dsn: str, holder: tuple[subprocess.Popen[bytes], Path]
) -> None:
    proc, log = holder
    contender = SessionLock(pg_dsn, ACCOUNTANT, lease_s=LEASE_S)
    try:
        await _until("the holder leads", lambda: _rounds(log)[:1] == ["True"])
        # a round's step lasts 3 leases: the heartbeat keeps the session, so the lock stays the holder's
        deadline = time.monotonic() + 4 * LEASE_S
        while time.monotonic() < deadline:
            assert not await _contend(contender), log.read_text()
            await asyncio.sleep(0.2)
        assert proc.poll() is None, log.read_text()

        os.kill(proc.pid, signal.SIGSTOP)  # frozen: the socket stays open, only the lease can end the session
        deadline = time.monotonic() + 30
        while not await _contend(contender):
            assert time.monotonic() < deadline, "the frozen leader kept the lock"
            await asyncio.sleep(0.2)

        seen = len(_rounds(log))
        os.kill(proc.pid, signal.SIGCONT)
        await _until("the woken holder's next round", lambda: len(_rounds(log)) > seen)
        assert _rounds(log)[seen:] == ["False"] * len(_rounds(log)[seen:]), log.read_text()
        assert proc.poll() is None, log.read_text()
        assert await _contend(contender)  # still the successor's
    finally:
        await contender.close()
