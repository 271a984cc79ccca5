"""Backups that restore (``gridtokenx-central backup`` and ``restore``; docs/operations.md, "Backup and restore"):
one directory holding everything central's state is made of, with a manifest of checksums.

What goes in (``manifest.json`` lists each file with its size and SHA-256):

- ``database.dump``: ``pg_dump --format=custom`` of ``database.dsn`` (one consistent snapshot of every table);
- ``ledger/``: the embedded ledger's ``ledger.log`` and ``faucet.json`` (``ledger.data_dir``; the ``rpc`` backend has
  none: its chain is the cluster's);
- ``keys/``: every file of ``ledger.keys_dir`` — the platform keypairs with ``key_store = "file"`` (current, next and
  retired), and ``mints.json`` (both key stores). Keys inside a PKCS#11 token are not copied: the token's own backup
  covers them (the manifest names the token).

Consistency: the embedded ledger lives inside central and its directory is locked (``flock``) while central runs.
``backup`` takes the same lock and holds it until the copy is complete, so it refuses to run beside a running
central and central cannot start half way through: database, ledger and keys are one moment. That moment may have
chain work in flight (intents pending, transactions submitted but not yet reconciled); the chain outbox finishes
them after a restore exactly as after a restart (write-ahead signatures, reconciliation by signature status).

``restore`` checks every checksum first, refuses to overwrite anything (an existing database with tables, a ledger
log, key files), then writes keys and ledger (mode 600, directories 700) and loads the dump into a database it
creates. Secrets never go to the output: the dump is run with the password in the environment, not the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from central.config import CentralConfig
from central.db.pool import connect
from central.errors import CentralError

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
LEDGER_FILES = ("ledger.log", "faucet.json")


class BackupError(CentralError):
    """A backup or restore that cannot go on (the message says why and what to do)."""


@dataclass(frozen=True)
class Entry:
    path: str
    bytes: int
    sha256: str


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _entry(root: Path, path: Path) -> Entry:
    return Entry(str(path.relative_to(root)), path.stat().st_size, _sha256(path))


def _libpq_env(dsn: str) -> dict[str, str]:
    """The DSN as libpq environment variables, so no password shows on a command line (``ps``)."""
    u = urlsplit(dsn)
    env = dict(os.environ)  # PGPASSFILE, PGSSLROOTCERT and the like still apply
    pairs = (("PGHOST", u.hostname), ("PGPORT", str(u.port) if u.port else None),
             ("PGUSER", unquote(u.username) if u.username else None),
             ("PGPASSWORD", unquote(u.password) if u.password else None),
             ("PGDATABASE", unquote(u.path.lstrip("/")) or None))
    env.update({var: value for var, value in pairs if value})
    for part in filter(None, u.query.split("&")):
        key, _, value = part.partition("=")
        if key == "sslmode":
            env["PGSSLMODE"] = unquote(value)
    return env


def _database_name(dsn: str) -> str:
    name = unquote(urlsplit(dsn).path.lstrip("/"))
    if not name:
        raise BackupError("database.dsn names no database")
    return name


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    tool = shutil.which(cmd[0])
    if tool is None:
        raise BackupError(f"{cmd[0]} is not installed (Debian: postgresql-client, the server's major version)")
    proc = subprocess.run([tool, *cmd[1:]], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise BackupError(f"{what} failed ({cmd[0]} exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def _ledger_lock(data_dir: Path) -> Iterator[None]:
    """The embedded ledger's own directory lock: held, central cannot run (nor start) meanwhile."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"the embedded ledger in {data_dir} is in use: stop central (every worker) first, "
                              "then back up or restore, then start it again") from None
        yield
    finally:
        os.close(fd)


def _copy_private(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(config: CentralConfig, out: Path) -> dict[str, Any]:
    """Write a backup into the new directory ``out``; returns the manifest."""
    if out.exists():
        raise BackupError(f"{out} exists: a backup goes into a new directory")
    embedded = config.ledger.backend == "embedded"
    lock = _ledger_lock(config.ledger.data_dir) if embedded else contextlib.nullcontext()
    with lock:
        out.mkdir(parents=True, mode=0o700)
        entries: list[Entry] = []
        # The ledger first, then the database: see docs/operations.md (the ordering rule). Central is stopped (the
        # lock says so), so neither changes meanwhile; the order is what a hot copy would need.
        if embedded:
            for name in LEDGER_FILES:
                src = config.ledger.data_dir / name
                if src.exists():
                    _copy_private(src, out / "ledger" / name)
                    entries.append(_entry(out, out / "ledger" / name))
        keys_dir = config.ledger.keys_dir
        if keys_dir.is_dir():
            for src in sorted(p for p in keys_dir.iterdir() if p.is_file()):
                _copy_private(src, out / "keys" / src.name)
                entries.append(_entry(out, out / "keys" / src.name))
        dump = out / DUMP
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}"],
             _libpq_env(config.database.dsn), "pg_dump")
        os.chmod(dump, 0o600)
        entries.append(_entry(out, dump))
        migrations = asyncio.run(_applied_migrations(config.database.dsn))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": {"name": _database_name(config.database.dsn), "migrations": migrations},
        "ledger": {"backend": config.ledger.backend, "key_store": config.ledger.key_store,
                   **({"token_label": config.ledger.hsm.token_label, "label_prefix": config.ledger.hsm.label_prefix}
                      if config.ledger.key_store == "pkcs11" else {})},
        "files": [e.__dict__ for e in entries],
    }
    path = out / MANIFEST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(out)
    return manifest


async def _applied_migrations(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        return [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]
    finally:
        await conn.close()


def read_manifest(src: Path) -> dict[str, Any]:
    """The backup's manifest, after checking every file it lists (size and SHA-256)."""
    try:
        manifest: dict[str, Any] = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src / MANIFEST} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src} is not a backup of format {FORMAT}")
    for e in manifest["files"]:
        path = src / e["path"]
        if not path.is_file() or path.stat().st_size != e["bytes"] or _sha256(path) != e["sha256"]:
            raise BackupError(f"{path} is missing or does not match its checksum: the backup is damaged")
    return manifest


def restore(config: CentralConfig, src: Path) -> dict[str, Any]:
    """Restore the backup in ``src`` into the configured database, ledger directory and keys directory, none of
    which may hold state already. Central must be stopped."""
    manifest = read_manifest(src)
    if manifest["ledger"]["backend"] != config.ledger.backend:
        raise BackupError(f"the backup is of a {manifest['ledger']['backend']} ledger, the configuration says "
                          f"{config.ledger.backend}")
    if manifest["ledger"]["key_store"] != config.ledger.key_store:
        raise BackupError(f"the backup's keys are in a {manifest['ledger']['key_store']} key store, the "
                          f"configuration says {config.ledger.key_store}")
    files = [e["path"] for e in manifest["files"]]
    embedded = config.ledger.backend == "embedded"
    lock = _ledger_lock(config.ledger.data_dir) if embedded else contextlib.nullcontext()
    with lock:
        targets = [(src / p, config.ledger.data_dir / p.split("/", 1)[1]) for p in files if p.startswith("ledger/")]
        targets += [(src / p, config.ledger.keys_dir / p.split("/", 1)[1]) for p in files if p.startswith("keys/")]
        present = [str(dst) for _, dst in targets if dst.exists()]
        if embedded and (config.ledger.data_dir / "ledger.log").exists():
            present.append(str(config.ledger.data_dir / "ledger.log"))
        if present:
            raise BackupError(f"restore would overwrite {', '.join(sorted(set(present)))}: move them aside first")
        asyncio.run(_create_database(config.database.dsn))
        _run(["pg_restore", "--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
              f"--dbname={_database_name(config.database.dsn)}", str(src / DUMP)],
             _libpq_env(config.database.dsn), "pg_restore")
        for source, dst in targets:
            _copy_private(source, dst)
        for d in {dst.parent for _, dst in targets}:
            _fsync_dir(d)
    return manifest


async def _create_database(dsn: str) -> None:
    """Create the configured database (it must not exist, or be empty)."""
    name = _database_name(dsn)
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        u = urlsplit(dsn)
        admin = await asyncpg.connect(u._replace(path="/postgres").geturl())
        try:
            await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
        finally:
            await admin.close()
        return
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    finally:
        await conn.close()
    if tables:
        raise BackupError(f"database {name} already holds {tables} table(s): restore into a new or empty database")
