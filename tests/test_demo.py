"""`make demo` end to end, so it cannot silently rot: runs tests/demo.py --quick (its own state directory and
database) as a subprocess and checks the story's outcomes in its summary; then the web3.js compatibility check
(tests/compat/) reads the ledger the demo left behind through @solana/web3.js and @solana/spl-token and compares
every answer with what PostgreSQL says."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.compat.web3 import check_against_database

ROOT = Path(__file__).resolve().parent.parent


def run_demo(tmp_path: Path, timeout_s: float, db: str) -> tuple[int, str]:
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "demo.py"), "--quick", "--state-dir", str(tmp_path / "state"),
             "--db", db],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGTERM)  # the demo stops its own processes by PID on SIGTERM
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            code = -1
    return code, out.read_text(encoding="utf-8", errors="replace")


def summary_value(text: str, label: str) -> str:
    m = re.search(rf"^\s*{re.escape(label)}\s*: (.*)$", text, re.MULTILINE)
    assert m is not None, f"no '{label}' line in the demo's summary"
    return m.group(1)


@dataclass(frozen=True)
class DemoRun:
    code: int
    text: str
    state: Path
    db: str


async def _drop(db: str) -> None:
    conn = await asyncpg.connect(pg_dsn_of("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


def pg_dsn_of(db: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{db}"


@pytest.fixture
def demo_run(tmp_path: Path) -> Iterator[DemoRun]:
    """A demo run; its database is dropped afterwards. (One test uses it: xdist may hand the tests of one file to
    different workers, and a module-scoped fixture would then run the demo twice.)"""
    db = f"gridtokenx_demo_test_{secrets.token_hex(4)}"
    try:
        code, text = run_demo(tmp_path, timeout_s=300, db=db)
        yield DemoRun(code, text, tmp_path / "state", db)
    finally:
        asyncio.run(_drop(db))


def check_story(code: int, text: str) -> None:
    assert code == 0, f"demo exited {code}:\n{text[-6000:]}"
    assert "NOT SHOWN" not in text, text[-6000:]

    minted = re.match(r"(\d+) Wh \(.*\) to (\d+) prosumers, on chain = database", summary_value(text, "minted energy"))
    assert minted is not None
    assert int(minted.group(1)) > 0
    assert int(minted.group(2)) >= 1

    price = re.match(r"(\d+) quote units/kWh .* volume (\d+) Wh, (\d+) trades, epoch settled",
                     summary_value(text, "clearing price"))
    assert price is not None, text[-4000:]
    assert int(price.group(1)) > 0
    assert int(price.group(2)) > 0
    assert int(price.group(3)) >= 1

    signature = summary_value(text, "settlement tx")
    assert re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]{64,90}", signature), signature

    cert = re.match(r"\S+ (\d+) Wh issued, retired (\d+) Wh, valid=True", summary_value(text, "certificate"))
    assert cert is not None, text[-4000:]
    assert 0 < int(cert.group(2)) < int(cert.group(1))
    assert "reconciliation: " in text
    assert " 0 mismatches" in text
    assert "→ window root ok → mint leaf ok → memo root ok, found on chain: True" in text  # the mint audit
    assert "verified by central=True" in text
    assert " 0 dead letters" in text  # every reading the gateway signed was accepted by central

    # it ends with the web app's address and the demo users' logins
    assert re.match(r"http://127\.0\.0\.1:\d+/ ", summary_value(text, "web app"))
    for role in ("admin", "installer", "rec_authority", "prosumer", "consumer"):
        assert re.search(rf"^\s+{role}\s+\S+@demo\.gridtokenx\.local\s+password \S+$", text, re.MULTILINE), role

    # every process the demo started was stopped, each by its PID, cleanly
    stopped = summary_value(text, "stopped")
    for name in ("edge", "central", "simulator", "mosquitto"):
        assert re.search(rf"{name} \(pid \d+, exit 0\)", stopped), f"{name} not stopped cleanly: {stopped}"


@pytest.mark.slow
@pytest.mark.timeout(500)
async def test_demo_tells_the_whole_story_and_web3_reads_it(demo_run: DemoRun) -> None:
    """The story's outcomes in the summary; then @solana/web3.js and @solana/spl-token read the ledger it left
    behind and every answer is compared with PostgreSQL (tests/compat)."""
    check_story(demo_run.code, demo_run.text)
    await check_against_database(demo_run.state, pg_dsn_of(demo_run.db))
