"""Running the app: one process, or N worker processes sharing the HTTP port (SO_REUSEPORT).

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
import signal
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

from aiohttp import web

from central.config import CentralConfig, load_config
from central.db import migrate_dsn
from central.observability.logs import configure_logging

log = logging.getLogger(__name__)


async def serve_forever(config: CentralConfig, *, reuse_port: bool) -> None:
    """Serve until SIGTERM/SIGINT."""
    from central.app import create_app  # noqa: PLC0415 - the composition root imports every subsystem

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
    if config.database.migrate_on_start:
        applied = asyncio.run(migrate_dsn(config.database.dsn))
        if applied:
            log.info("migrations applied", extra={"migrations": applied})
    workers = config.http.workers
    if workers == 1:
        asyncio.run(serve_forever(config, reuse_port=False))
        return 0
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
                last_restart = time.monotonic()
                procs[i] = start_one()
