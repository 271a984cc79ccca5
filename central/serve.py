"""Running the app: one process, or N worker processes sharing the HTTP port (SO_REUSEPORT).

This module sits beside ``central.cli``, above the composition root ``central.app`` (the import layers in
``pyproject.toml``); it used to live in ``central.http``, which made ``http`` and ``app`` import each other.

Each worker builds its own app (pool, MQTT client with its own client id; ingest splits readings through the
shared subscription). The parent applies migrations once, starts the workers, restarts one that dies unexpectedly
(at most once per second) and forwards SIGTERM/SIGINT for a graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

from aiohttp import web
from prometheus_client import multiprocess

from central.app import create_app
from central.config import CentralConfig, load_config
from central.db import migrate_dsn
from central.observability.logs import configure_logging

log = logging.getLogger(__name__)


async def serve_forever(config: CentralConfig, *, reuse_port: bool) -> None:
    """Serve until SIGTERM/SIGINT."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.http.host, config.http.port, reuse_port=reuse_port, backlog=1024)
    await site.start()
    gc.collect()
    gc.freeze()  # start-up objects stay out of later collections (shorter GC pauses, better tail latency)
    log.info("serving", extra={"host": config.http.host, "port": config.http.port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()


def _worker(config_path: str | None, overrides: Sequence[str]) -> None:
    config = load_config(config_path, overrides)
    configure_logging(config.log.level, config.log.format)
    asyncio.run(serve_forever(config, reuse_port=True))


def run(config: CentralConfig, config_path: str | None, overrides: Sequence[str]) -> int:
    """Entry point of ``gridtokenx-central serve``."""
    if config.mqtt.enabled:  # central's signing key (protocol v1.1): refuse to start without a usable one
        from central.signing import load_signing_key  # noqa: PLC0415

        load_signing_key(config.mqtt.signing_key_file)
    if config.database.migrate_on_start:
        applied = asyncio.run(migrate_dsn(config.database.dsn))
        if applied:
            log.info("migrations applied", extra={"migrations": applied})
    workers = config.http.workers
    if workers == 1:
        asyncio.run(serve_forever(config, reuse_port=False))
        return 0
    metrics_dir, made_dir = _metrics_dir(config)
    overrides = [*overrides, f'http.metrics_dir="{metrics_dir}"']
    try:
        return _supervise(workers, config_path, overrides, metrics_dir)
    finally:
        if made_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir(config: CentralConfig) -> tuple[str, bool]:
    """The prometheus_client multiprocess directory for the workers (emptied: old files would count twice).
    prometheus_client only learns it from its environment variable, which spawned workers inherit."""
    made = not config.http.metrics_dir
    path = Path(config.http.metrics_dir or tempfile.mkdtemp(prefix="gtx-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path), made


def _supervise(workers: int, config_path: str | None, overrides: Sequence[str], metrics_dir: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = []
    stopping = False

    def start_one() -> BaseProcess:
        p = ctx.Process(target=_worker, args=(config_path, list(overrides)), daemon=False)
        p.start()
        return p

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    procs.extend(start_one() for _ in range(workers))
    log.info("workers started", extra={"workers": workers, "pids": [p.pid for p in procs]})
    last_restart = 0.0
    while True:
        time.sleep(0.2)
        if stopping:
            for p in procs:
                p.join(timeout=15)
                if p.is_alive():
                    p.kill()
                    p.join()
            return 0
        for i, p in enumerate(procs):
            if not p.is_alive():
                if time.monotonic() - last_restart < 1.0:
                    continue
                log.warning("worker exited; restarting", extra={"pid": p.pid, "exitcode": p.exitcode})
                if p.pid is not None:
                    multiprocess.mark_process_dead(p.pid, metrics_dir)  # type: ignore[no-untyped-call]
                last_restart = time.monotonic()
                procs[i] = start_one()
