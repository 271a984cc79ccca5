"""`gridtokenx-central ledger init` through the real CLI: idempotent, keys 0600, no secret in the output."""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
import sys
from pathlib import Path


def _init(tmp_path: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable, "-m", "central.cli",
            "--set", f'auth.jwt_secret_file="{tmp_path / "jwt"}"',
            "--set", f'ledger.data_dir="{tmp_path / "ledger"}"',
            "--set", f'ledger.keys_dir="{tmp_path / "keys"}"',
            "--set", "ledger.create_keys=true",
            "--set", "ledger.rpc_port=0",
            "ledger", "init",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for key_file in (tmp_path / "keys").glob("*.json"):
        secret = json.loads(key_file.read_text())
        assert str(secret) not in out.stdout + out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_ledger_init_is_idempotent_and_keeps_keys_private(tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text(secrets.token_urlsafe(32))
    (tmp_path / "jwt").chmod(0o600)
    first = _init(tmp_path)
    assert first["energy_decimals"] == 3
    assert first["quote_decimals"] == 6
    assert _init(tmp_path) == first
    key_files = list((tmp_path / "keys").glob("*.json"))
    assert {p.stem for p in key_files} >= {"mint_authority", "fee_payer", "escrow_authority", "treasury"}
    for key_file in key_files:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
