"""The composition root: builds the adapters (key file, SQLite outbox, MQTT, meters, HTTP) and runs the services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.clock import make_clock_check
from edge.config import EdgeConfig
from edge.credential import broker_login
from edge.devicekey import LoadedKey, load_device_key
from edge.meters.base import MeterReader
from edge.mqtt_link import MqttLink
from edge.outbox import Outbox, OutboxStats
from edge.poller import Poller
from edge.sdnotify import Notifier
from edge.signing import ProtocolSigner
from edge.status import LinkState, MeterStatus, StatusBoard
from edge.uplink import Uplink
from edge.web import StatusServer
from protocol.signed import format_pairing_code, pairing_code

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 5.0
FLUSH_ON_STOP_S = 3.0


@dataclass(frozen=True, slots=True)
class MeterInfo:
    serial: str
    protocol: str
    address: str
    model: str
    interval_s: int
    #: P1 meters: alarm when the meter's clock and the gateway's differ by more than this (0: no check)
    max_clock_skew_s: int = 0


MeterList = Sequence[tuple[MeterInfo, MeterReader]]
MeterSource = Callable[[], AbstractAsyncContextManager[MeterList]]


def static_meters(meters: MeterList) -> MeterSource:
    """A meter source over readers built elsewhere (tests, benchmarks); closes them on exit."""

    @contextlib.asynccontextmanager
    async def source() -> AsyncIterator[MeterList]:
        try:
            yield meters
        finally:
            for _, reader in meters:
                await reader.close()

    return source


DIST_NAME = "gridtokenx"


def software_version(paths: Sequence[str] | None = None) -> str:
    """The installed distribution's version, from the ``Version:`` line of its ``*.dist-info/METADATA`` on the
    import path (what ``importlib.metadata.version`` returns, without importing it and its email/zipfile/csv
    modules into the daemon: about 1 MB of RSS on a gateway)."""
    for entry in sys.path if paths is None else paths:
        try:
            candidates = sorted(Path(entry or ".").glob(f"{DIST_NAME}-*.dist-info"))
        except OSError:  # pragma: no cover - an unreadable path entry
            continue
        for info in candidates:
            try:
                with (info / "METADATA").open(encoding="utf-8") as f:
                    for line in f:
                        if not line.strip():
                            break  # end of the headers
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "version":
                            return value.strip()
            except OSError:
                continue
    return "0+unknown"  # pragma: no cover - running from a plain checkout


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Daemon:
    def __init__(
        self,
        cfg: EdgeConfig,
        meters: MeterSource,
        *,
        notifier: Notifier | None = None,
        flush_on_stop_s: float = FLUSH_ON_STOP_S,
    ) -> None:
        self.cfg = cfg
        self._flush_s = flush_on_stop_s
        self._meter_source = meters
        self._notifier = notifier or Notifier(None)
        self.version = software_version()
        self.board: StatusBoard | None = None
        self.outbox: Outbox | None = None
        self.uplink: Uplink | None = None
        self.web_port: int | None = None
        self.ready = asyncio.Event()

    def status(self) -> dict[str, Any]:
        assert self.board is not None
        assert self.outbox is not None
        self._refresh_alarms()
        return self.board.snapshot(_now_ms(), self.outbox.stats(), self.outbox.dead_letters(10))

    async def status_async(self) -> dict[str, Any]:
        """The status snapshot for the page; the outbox is read on its own thread, not on the event loop."""
        board, outbox = self.board, self.outbox
        assert board is not None
        assert outbox is not None
        stats = await outbox.call(outbox.stats)
        dead = await outbox.call(outbox.dead_letters, 10)
        self._refresh_alarms(stats)
        return board.snapshot(_now_ms(), stats, dead)

    async def _housekeeping_once(self) -> None:
        board, outbox = self.board, self.outbox
        assert board is not None
        assert outbox is not None
        # SQLite work (a COUNT over a large backlog, the incremental vacuum) runs on the outbox thread.
        stats = self._refresh_alarms(await outbox.call(outbox.stats))
        if stats.depth < 1000:  # only once a backlog is (nearly) gone, never while draining it
            freed = await outbox.call(outbox.compact)
            if freed:
                log.info("outbox file compacted", extra={"pages_freed": freed})
        self._notifier.watchdog()
        self._notifier.status(
            f"{board.link.state}; outbox {stats.depth}; meters up "
            f"{sum(1 for m in board.meters.values() if m.up)}/{len(board.meters)}"
        )

    def _refresh_alarms(self, stats: OutboxStats | None = None) -> OutboxStats:
        board, outbox, cfg = self.board, self.outbox, self.cfg
        assert board is not None
        assert outbox is not None
        if stats is None:
            stats = outbox.stats()
        try:
            free = shutil.disk_usage(cfg.outbox.path.parent).free
        except OSError:
            free = None
        board.disk_free_bytes = free
        board.outbox_bytes = outbox.size_bytes()
        changes = [
            (
                "disk_low",
                None
                if free is None or free >= cfg.outbox.min_free_mb * 1_000_000
                else f"disk almost full: {free // 1_000_000} MB free for the outbox at {cfg.outbox.path.parent}; "
                f"{stats.depth} readings wait for central and are kept — restore the uplink or free space",
            ),
            (
                "outbox_large",
                None
                if stats.depth < cfg.outbox.alarm_records
                else f"{stats.depth} readings wait for central (alarm at {cfg.outbox.alarm_records}); "
                "check the link to central",
            ),
            (
                "chain_sync",
                None
                if not stats.needs_sync
                else f"local database was lost: {stats.pending_unsigned} readings wait for central's chain head",
            ),
            ("clock", None if board.clock_synced is not False else "gateway clock is not synchronised (NTP)"),
        ]
        down = [m.serial for m in board.meters.values() if m.up is False]
        changes.append(("meters_down", f"meters not answering: {', '.join(down)}" if down else None))
        for key, message in changes:
            if board.alarm(key, message):
                if message:
                    log.warning("ALARM %s", message, extra={"alarm": key})
                else:
                    log.info("alarm cleared", extra={"alarm": key})
        return stats

    async def _housekeeping(self) -> None:
        while True:
            await self._housekeeping_once()
            await asyncio.sleep(HOUSEKEEPING_S)

    async def _start_web(self) -> StatusServer | None:
        cfg = self.cfg.status
        assert self.board is not None
        server = StatusServer(cfg, self.status_async)
        try:
            self.web_port = await server.start()
        except OSError as e:  # readings matter more than the page: go on without it, loudly
            await server.close()
            self.board.alarm("status_page", f"status page not available on {cfg.bind}:{cfg.port}: {e.strerror or e}")
            log.error("status page not available", extra={"error": str(e)})  # noqa: TRY400
            return None
        log.info("status page listening", extra={"bind": cfg.bind, "port": self.web_port})
        return server

    async def _flush(self) -> None:
        """Give central a moment to ack what is in flight, so fewer records are sent twice after a restart."""
        uplink, board = self.uplink, self.board
        assert uplink is not None
        assert board is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_s
        while uplink.connected and board.link.inflight_batches and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def _device_key(self) -> LoadedKey:
        cfg = self.cfg
        loaded = load_device_key(cfg)
        if loaded.created:
            where = str(cfg.key_path) if cfg.pkcs11 is None else f"pkcs11 token {cfg.pkcs11.token_label}"
            log.info("generated the device key", extra={"device_id": loaded.key.device_id, "path": where})
        return loaded

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        loaded = self._device_key()
        key = loaded.key
        outbox = self.outbox = Outbox.open(cfg.outbox.path, new_device=loaded.created, max_power_w=cfg.max_power_w)
        clock_check = make_clock_check(cfg.clock_check)
        board = self.board = StatusBoard(
            device_id=key.device_id,
            version=self.version,
            started_ms=_now_ms(),
            link=LinkState(broker=f"{'mqtts' if cfg.mqtt.tls else 'mqtt'}://{cfg.mqtt.host}:{cfg.mqtt.port}"),
            clock_synced=clock_check(),
            pairing_code=format_pairing_code(pairing_code(loaded.pairing_secret)),
        )
        signer = ProtocolSigner(key)
        loop = asyncio.get_running_loop()
        link = MqttLink(
            broker_login(cfg.mqtt, key.device_id, loaded.pairing_secret),
            client_id=key.device_id,
            status_topic="",
            subscriptions=(),
            loop=loop,
            state=board.link,
        )
        uplink = self.uplink = Uplink(
            key=key, central_public_key=cfg.central.public_key, outbox=outbox, signer=signer, link=link,
            pairing_secret=loaded.pairing_secret,
            mqtt=cfg.mqtt, outbox_cfg=cfg.outbox, board=board,
            version=self.version,
        )
        link.configure_topics(uplink.topic_status, uplink.subscriptions)
        stats = outbox.stats()
        log.info(
            "gridtokenx-edge starting",
            extra={"device_id": key.device_id, "version": self.version, "outbox_depth": stats.depth,
                   "last_seq": stats.last_seq, "needs_sync": stats.needs_sync},
        )
        web_server: StatusServer | None = None
        tasks: list[asyncio.Task[None]] = []
        link_started = False
        try:
            async with self._meter_source() as meters:
                poller = Poller(
                    outbox=outbox, signer=signer, board=board, on_record=uplink.wake, clock_synced=clock_check
                )
                for info, _ in meters:
                    board.meters[info.serial] = MeterStatus(
                        info.serial, info.protocol, info.address, info.model, info.interval_s,
                        max_clock_skew_s=info.max_clock_skew_s,
                    )
                if cfg.status.enabled:
                    web_server = await self._start_web()
                link.start(uplink)
                link_started = True
                tasks.append(asyncio.create_task(uplink.run(), name="uplink"))
                tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
                tasks.extend(
                    asyncio.create_task(poller.run_meter(reader, board.meters[info.serial]), name=f"poll {info.serial}")
                    for info, reader in meters
                )
                self._notifier.ready(f"device {key.device_id}")
                self.ready.set()
                await stop.wait()
                log.info("stopping")
                self._notifier.stopping()
                for t in tasks[2:]:  # stop polling first; a commit in progress is synchronous and finishes
                    t.cancel()
                await asyncio.gather(*tasks[2:], return_exceptions=True)
                await self._flush()
                await link.stop()
                link_started = False
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if link_started:
                await link.stop()
            if web_server is not None:
                await web_server.close()
            final = outbox.stats()
            log.info(
                "stopped",
                extra={"outbox_depth": final.depth, "last_seq": final.last_seq, "dead_letters": final.dead_letters,
                       "mqtt_acked": board.link.acked_records},
            )
            outbox.close()
            loaded.close()
