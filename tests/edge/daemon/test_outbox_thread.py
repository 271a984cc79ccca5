"""Issue 10, D3: the status page's outbox figures are read on the outbox thread, never on the event loop."""

from __future__ import annotations

import threading

from edge.config import EdgeConfig
from edge.daemon import Daemon, static_meters
from edge.outbox import Outbox
from edge.status import LinkState, StatusBoard


async def test_status_snapshot_reads_the_outbox_off_the_event_loop(cfg: EdgeConfig, outbox: Outbox) -> None:
    daemon = Daemon(cfg, static_meters([]))
    daemon.board = StatusBoard(device_id="d", version="t", started_ms=0, link=LinkState("x"))
    daemon.outbox = outbox
    threads: set[str] = set()
    outbox._conn.set_trace_callback(lambda _sql: threads.add(threading.current_thread().name))
    try:
        snap = await daemon.status_async()
    finally:
        outbox._conn.set_trace_callback(None)
    assert snap["outbox"]["depth"] == 0
    assert threads
    assert all(name.startswith("outbox") for name in threads)
