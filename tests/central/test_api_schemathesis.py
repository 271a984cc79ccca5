"""The OpenAPI document against the live API: schemathesis generates valid and invalid requests for every operation,
once per role (and once anonymous), against the real central app on a real PostgreSQL, with every check enabled.

Bounded so it stays well under a minute per caller; part of ``make test``: ``MAX_EXAMPLES`` per operation in the
examples and fuzzing phases, which run every operation as every caller; the coverage phase (boundary and negative
values of every parameter, most of the cost) runs each operation as the callers its ``x-access`` admits.
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


async def _st_run(base_url: str, headers: dict[str, str], report_dir: Path, config: Path) -> tuple[int, str]:
    st = Path(sys.executable).with_name("st")
    args = [
        str(st), "--config-file", str(config), "run", f"{base_url}/api/openapi.json",
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


def _coverage_off_outside_access(access: dict[str, str | list[str]], caller: str) -> str:
    """Config lines that turn the coverage phase off for the operations ``caller`` may not call (``x-access`` in the
    document): every input to those is refused before it is read (401/403), which the examples and fuzzing phases
    still check; the coverage phase's boundary and negative values go where they can reach the code."""
    denied = sorted(
        op_id for op_id, who in access.items() if who != "public" and (caller == "anonymous" or caller not in who)
    )
    if not denied:
        return ""
    ids = ", ".join(f'"{op_id}"' for op_id in denied)
    return f"\n[[operations]]\ninclude-operation-id = [{ids}]\nphases.coverage.enabled = false\n"


#: One test per caller (anonymous and each role), each on its own app and database, so pytest-xdist spreads them.
@pytest.mark.spread
@pytest.mark.timeout(600)
@pytest.mark.parametrize("caller", ["anonymous", *(role.value for role in Role)])
async def test_live_responses_conform_to_the_document(caller: str, pg_dsn: str, tmp_path: Path) -> None:
    only = os.environ.get("GTX_SCHEMATHESIS_ROLES")  # e.g. "anonymous,admin" while debugging
    if only and caller not in only.split(","):
        pytest.skip(f"GTX_SCHEMATHESIS_ROLES={only}")
    config = make_config(pg_dsn, tmp_path, ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 20})
    async with running_app(config, SUBSYSTEMS) as client:
        base_url = str(client.make_url("")).rstrip("/")
        headers = {} if caller == "anonymous" else await login(client, config, f"st-{caller}@example.org", Role(caller))
        doc = await (await client.get("/api/openapi.json")).json()
        access = {op["operationId"]: op["x-access"] for ops in doc["paths"].values() for op in ops.values()}
        assert access, "the document lists no operations"
        st_config = tmp_path / "schemathesis.toml"
        st_config.write_text(CONFIG.read_text() + _coverage_off_outside_access(access, caller))
        code, out = await _st_run(base_url, headers, tmp_path, st_config)
        assert code == 0, f"===== as {caller} (exit {code}) =====\n{out[-12000:]}"
