"""The OpenAPI document against the live API: schemathesis generates valid and invalid requests for every operation,
once per role (and once anonymous), against the real central app on a real PostgreSQL, with every check enabled.

Bounded (``MAX_EXAMPLES`` per operation and run) so it stays a minute or two; part of ``make test``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from central.app import SUBSYSTEMS
from central.http import Role
from tests.central.app_env import login, make_config, running_app

pytestmark = pytest.mark.slow

#: Examples per operation and run; six runs (five roles, anonymous). Raise locally for a deeper probe.
MAX_EXAMPLES = int(os.environ.get("GTX_SCHEMATHESIS_EXAMPLES", "3"))
CONFIG = Path(__file__).with_name("schemathesis.toml")


async def _st_run(base_url: str, headers: dict[str, str], report_dir: Path) -> tuple[int, str]:
    st = Path(sys.executable).with_name("st")
    args = [
        str(st), "--config-file", str(CONFIG), "run", f"{base_url}/api/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1",
        "--seed", "1",
        "--no-color",
        "--generation-database", "none",
        "--request-timeout", "20",
    ]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=report_dir,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.timeout(600)
async def test_live_responses_conform_to_the_document_for_every_role(pg_dsn: str, tmp_path: Path) -> None:
    config = make_config(pg_dsn, tmp_path, ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 20})
    async with running_app(config, SUBSYSTEMS) as client:
        base_url = str(client.make_url("")).rstrip("/")
        callers: dict[str, dict[str, str]] = {"anonymous": {}}
        for role in Role:
            callers[role.value] = await login(client, config, f"st-{role.value}@example.org", role)
        only = os.environ.get("GTX_SCHEMATHESIS_ROLES")  # e.g. "anonymous,admin" while debugging
        gate = asyncio.Semaphore(3)  # the server stays in this event loop; three clients keep both cores busy

        async def one(who: str, headers: dict[str, str]) -> str:
            report_dir = tmp_path / who
            report_dir.mkdir()
            async with gate:
                code, out = await _st_run(base_url, headers, report_dir)
            return "" if code == 0 else f"===== as {who} (exit {code}) =====\n{out[-12000:]}"

        runs = [one(who, h) for who, h in callers.items() if not only or who in only.split(",")]
        failures = [f for f in await asyncio.gather(*runs) if f]
        assert not failures, "\n".join(failures)
