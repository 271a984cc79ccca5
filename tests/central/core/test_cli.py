"""The command line: migrate, users create (first admin), serve --workers N sharing one port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from central.cli import main
from tests.central.device import write_signing_key
from tests.services import terminate

ROOT = Path(__file__).resolve().parents[3]


def _write_config(tmp_path: Path, pg_dsn: str, port: int = 0, broker=None) -> Path:  # type: ignore[no-untyped-def]
    mqtt = (f'host = "{broker.host}"\nport = {broker.port}\nsigning_key_file = "{write_signing_key(tmp_path)}"\n'
            if broker else "enabled = false\n")
    cfg = tmp_path / "central.toml"
    cfg.write_text(
        f'[database]\ndsn = "{pg_dsn}"\npool_min = 1\npool_max = 6\n'
        f"[mqtt]\n{mqtt}"
        f'[auth]\njwt_secret = "{secrets.token_urlsafe(40)}"\npassword_bcrypt_cost = 4\n'
        f'[mailer]\ndev_dir = "{tmp_path / "mail"}"\n'
        f'[http]\nhost = "127.0.0.1"\nport = {port}\n'
        '[log]\nlevel = "INFO"\n'
        # Private ledger state; keys created at start so the ledger (and /readyz) can be ready.
        f'[ledger]\ndata_dir = "{tmp_path / "ledger"}"\nkeys_dir = "{tmp_path / "keys"}"\n'
        f"rpc_port = {_free_port()}\ncreate_keys = true\n"
    )
    cfg.chmod(0o600)  # it holds the JWT secret inline: a secret file (central.secretfile)
    return cfg


@pytest.fixture
def keep_root_logging() -> Iterator[None]:
    """``main()`` installs the JSON log handler on the root logger; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_migrate_and_users_create(empty_pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  keep_root_logging: None) -> None:
    cfg = _write_config(tmp_path, empty_pg_dsn)
    assert main(["-c", str(cfg), "migrate"]) == 0
    assert "0001_identity.sql" in capsys.readouterr().out
    assert main(["-c", str(cfg), "migrate"]) == 0
    assert "applied 0 migration(s)" in capsys.readouterr().out
    pw = tmp_path / "pw"
    pw.write_text("admin password 123\n")
    assert main(["-c", str(cfg), "users", "create", "--email", "Root@Example.org", "--role", "admin",
                 "--password-file", str(pw)]) == 0
    assert "created admin root@example.org" in capsys.readouterr().out
    assert main(["-c", str(cfg), "users", "create", "--email", "root@example.org", "--role", "admin",
                 "--password-file", str(pw)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["-c", str(cfg), "--set", "http.port=-1", "migrate"]) == 2

    async def check() -> tuple[str, bool]:
        conn = await asyncpg.connect(empty_pg_dsn)
        try:
            row = await conn.fetchrow("SELECT role, email_verified_at IS NOT NULL AS v FROM users")
            return row["role"], row["v"]
        finally:
            await conn.close()

    assert asyncio.run(check()) == ("admin", True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # spawns two worker processes
def test_serve_with_two_workers_sharing_the_port(pg_dsn: str, tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    cfg = _write_config(tmp_path, pg_dsn, port, broker)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "central.cli", "-c", str(cfg), "serve", "--workers", "2"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 90  # a wait limit, not a speed check: two workers importing on a loaded machine
        while time.monotonic() < deadline and len(pids) < 2:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    assert resp.status == 200
                    assert json.loads(resp.read())["status"] == "ok"
            except OSError:
                time.sleep(0.2)
                continue
            logs = (tmp_path / "serve.log").read_text()
            pids = {json.loads(line)["process"] for line in logs.splitlines()
                    if line.startswith("{") and '"msg":"serving"' in line}
        assert len(pids) == 2, (tmp_path / "serve.log").read_text()[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=5) as resp:
            assert json.loads(resp.read())["openapi"] == "3.1.0"
        # /metrics aggregates both workers (prometheus_client multiprocess mode), whichever one answers.
        for _ in range(20):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.status == 200
        for _ in range(2):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            count = 'gtx_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} '
            assert f"{count}20.0" in text, [ln for ln in text.splitlines() if "/healthz" in ln]
            assert "gtx_http_workers 2.0" in text
    finally:
        terminate(proc, timeout=20, kill_timeout=None)
        log.close()
    assert proc.returncode == 0
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in text
    for line in text.splitlines():
        if line.strip():
            json.loads(line)  # structured: every line is one JSON object
