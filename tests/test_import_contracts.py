"""The import layers in ``pyproject.toml`` hold for the real tree, and ``lint-imports`` fails when one is crossed.

Each forbidden import is added to a temporary copy of the five packages (never to the real tree), so the test shows
that the contracts bite, not only that today's code happens to pass them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), "import-linter is missing: `make setup` installs the dev extras"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.json", "*.sql", "*.html", "*.css")
    for package in ("protocol", "gtxconfig", "gtxhsm", "edge", "central"):
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_real_tree_keeps_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("protocol/_forbidden.py", "import central.errors\n", "protocol is pure"),
        ("protocol/_forbidden.py", "import edge\n", "protocol is pure"),
        ("edge/_forbidden.py", "from central import errors\n", "edge and central never import each other"),
        ("central/_forbidden.py", "import edge\n", "edge and central never import each other"),
        ("gtxconfig/_forbidden.py", "import central.errors\n", "gtxconfig (the shared config loader) is pure"),
        ("gtxconfig/_forbidden.py", "import edge.errors\n", "gtxconfig (the shared config loader) is pure"),
        ("gtxhsm/_forbidden.py", "import central.errors\n", "gtxhsm (Ed25519 keys in a PKCS#11 token, shared)"),
        ("gtxhsm/_forbidden.py", "from edge import errors\n", "gtxhsm (Ed25519 keys in a PKCS#11 token, shared)"),
        ("central/ingest/_forbidden.py", "import asyncpg\n", None),  # not a declared core: allowed
    ],
)
def test_forbidden_import_fails_lint(tmp_path: Path, module: str, source: str, broken: str | None) -> None:
    root = _copy_tree(tmp_path)
    (root / module).write_text(source)
    result = _lint_imports(root)
    if broken is None:
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode != 0, result.stdout
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout


@pytest.mark.parametrize(
    ("module", "addition", "broken"),
    [
        # A pure core reaching an adapter, directly or through aiohttp.
        ("central/ingest/core.py", "\nimport central.ingest.postgres  # noqa\n", "cores import no adapters"),
        ("central/accounting/window_energy.py", "\nimport aiohttp  # noqa\n", "cores import no adapters"),
        ("central/market/clearing.py", "\nimport central.market.book  # noqa\n", "cores import no adapters"),
        # Identity's rules reaching their PostgreSQL store or asyncpg.
        ("central/identity/claims.py", "\nimport asyncpg  # noqa\n", "identity's pure core"),
        ("central/identity/users.py", "\nimport central.identity.postgres  # noqa\n", "identity's pure core"),
        # ... or the HTTP framework (the role enum is central.roles, below both).
        ("central/identity/model.py", "\nimport central.http.roles  # noqa\n", "identity's pure core"),
        ("central/roles.py", "\nimport central.http  # noqa\n", "subsystems form layers"),
        # Another subsystem reaching into ingest's PostgreSQL adapter (readings used to, for one constant).
        ("central/readings/live.py", "\nimport central.ingest.postgres  # noqa\n", "only ingest imports its storage"),
        ("central/minting/queries.py", "\nimport central.accounting.pg_store  # noqa\n", "only accounting imports its"),
        # A lower layer importing a higher one: a new cycle between subsystems.
        ("central/ledger/port.py", "\nimport central.wallets.service  # noqa\n", "subsystems form layers"),
        ("central/wallets/routes.py", "\nimport central.minting.service  # noqa\n", "subsystems form layers"),
        ("central/http/roles.py", "\nimport central.app  # noqa\n", "subsystems form layers"),
        # A subsystem reaching for the composition root or another's wiring (the old service locator).
        ("central/market/routes.py", "\nimport central.services  # noqa\n", "subsystems form layers"),
        ("central/market/routes.py", "\nimport central.wiring.readings  # noqa\n", "subsystems form layers"),
        ("central/wiring/market.py", "\nimport central.wiring.readings  # noqa\n", "wiring stands alone"),
        ("central/jobs.py", "\nimport asyncpg  # noqa\n", "cores import no adapters"),
    ],
)
def test_crossing_a_central_contract_fails_lint(tmp_path: Path, module: str, addition: str, broken: str) -> None:
    root = _copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text() + addition)
    result = _lint_imports(root)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout
    assert "BROKEN" in result.stdout
