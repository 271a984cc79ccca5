from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path

from edge.logs import JsonFormatter
from edge.sdnotify import Notifier


def test_notifier_sends_datagrams_to_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        n = Notifier(path)
        assert n.ready("device X")
        assert n.watchdog()
        assert n.stopping()
        got = [srv.recv(1024) for _ in range(3)]
    assert got == [b"READY=1\nSTATUS=device X", b"WATCHDOG=1", b"STOPPING=1"]


def test_notifier_without_systemd_is_a_no_op() -> None:
    assert Notifier(None).watchdog() is False
    assert Notifier("/nonexistent/sock").watchdog() is False


def test_logs_are_json_lines_with_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("edge.test-json")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("meter read failed", extra={"meter": "M-1", "consecutive": 3})
    finally:
        log.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["msg"] == "meter read failed"
    assert line["level"] == "warning"
    assert line["meter"] == "M-1"
    assert line["consecutive"] == 3
    assert line["ts"].endswith("Z")
