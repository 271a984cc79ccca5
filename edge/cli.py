"""``gridtokenx-edge`` command line: run | init | read --meter SERIAL | scan --port … | status.

This is the program's entry point and composition root: the only place that reads the environment
(``NOTIFY_SOCKET``) and installs signal handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edge.config import DEFAULT_CONFIG_PATH, EdgeConfig, load_config
from edge.errors import EdgeError

EXIT_OK, EXIT_FAIL, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help=f"config file (default {DEFAULT_CONFIG_PATH})"
    )
    p = argparse.ArgumentParser(
        prog="gridtokenx-edge", description="GridTokenX edge gateway: reads meters, signs, buffers, publishes.",
        parents=[common],
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common], help="run the daemon (what systemd starts)")
    sub.add_parser("init", parents=[common], help="create the state directory and device key; print the device id")
    rd = sub.add_parser("read", parents=[common], help="read one configured meter once and print the values")
    rd.add_argument("--meter", required=True, metavar="SERIAL", help="serial of a [[meter]] in the config")
    sc = sub.add_parser("scan", parents=[common], help="probe unit ids on a bus and name the meter models found")
    sc.add_argument("--port", required=True, help="bus name from the config, a serial device or host:port")
    sc.add_argument("--kind", default=None, help="bus kind when --port is not a configured bus name")
    sc.add_argument("--ids", default="1-247", help="unit ids to probe, e.g. 1-10 or 1,2,5 (default 1-247)")
    sc.add_argument("--listen", type=float, default=11.0, metavar="S",
                    help="P1 ports: seconds to listen for a telegram per serial setting (default 11)")
    st = sub.add_parser("status", parents=[common], help="ask the running daemon for its status")
    st.add_argument("--json", action="store_true", help="print the raw JSON")
    return p


def _config(args: argparse.Namespace) -> EdgeConfig:
    return load_config(getattr(args, "config", DEFAULT_CONFIG_PATH))


def _run(cfg: EdgeConfig) -> int:
    from edge.daemon import Daemon  # noqa: PLC0415 - keep `--help` and `status` light
    from edge.logs import setup_logging  # noqa: PLC0415
    from edge.meter_setup import meter_source  # noqa: PLC0415
    from edge.sdnotify import Notifier  # noqa: PLC0415

    setup_logging(cfg.log_level)
    source = meter_source(cfg)  # validates [[bus]]/[[meter]] before anything starts

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # asyncio.to_thread's pool (frame-counter reservations, MQTT shutdown): two threads, not up to cpu+4 of them
        loop.set_default_executor(ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-io"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Daemon(cfg, source, notifier=Notifier(os.environ.get("NOTIFY_SOCKET"))).run(stop)

    asyncio.run(main())
    return EXIT_OK


def _init(cfg: EdgeConfig) -> int:
    import segno  # noqa: PLC0415

    from edge.devicekey import load_device_key  # noqa: PLC0415
    from edge.outbox import Outbox  # noqa: PLC0415

    loaded = load_device_key(cfg)
    key = loaded.key
    loaded.close()
    Outbox.open(cfg.outbox.path, new_device=loaded.created).close()
    print("new device key generated" if loaded.created else "device key already present (unchanged)")
    if cfg.pkcs11 is None:
        print(f"key file:  {cfg.key_path} (never copy it off the gateway)")
    else:
        print(f"key:       {cfg.pkcs11.key_label!r} in PKCS#11 token {cfg.pkcs11.token_label!r} (it never leaves it)")
    print(f"outbox:    {cfg.outbox.path}")
    print(f"device id: {key.device_id}")
    segno.make(key.device_id, error="m").terminal(compact=True)
    return EXIT_OK


def _fetch_status(cfg: EdgeConfig) -> dict[str, Any]:
    host = "127.0.0.1" if cfg.status.bind in {"0.0.0.0", "::"} else cfg.status.bind  # noqa: S104 - comparison only
    if ":" in host:
        host = f"[{host}]"
    req = urllib.request.Request(f"http://{host}:{cfg.status.port}/api/status")
    token = base64.b64encode(f"cli:{cfg.status.password or ''}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - fixed scheme
        data: dict[str, Any] = json.loads(resp.read())
    return data


def _status(cfg: EdgeConfig, raw: bool) -> int:
    if not cfg.status.enabled:
        print("the status page is disabled in the config ([status] enabled = false)", file=sys.stderr)
        return EXIT_FAIL
    try:
        s = _fetch_status(cfg)
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"daemon not reachable on port {cfg.status.port}: {e} (is it running? systemctl status gridtokenx-edge)",
              file=sys.stderr)
        return EXIT_FAIL
    if raw:
        print(json.dumps(s, indent=2))
        return EXIT_OK
    ob, mq = s["outbox"], s["mqtt"]
    print(f"device   {s['device_id']}  version {s['version']}  uptime {s['uptime_s']} s")
    print(f"verified {s['verified']}  clock synced {s['clock_synced']}")
    print(f"mqtt     {mq['state']} {mq['broker']}  last ack {mq['last_ack_ms']}  in flight {mq['inflight_records']}")
    print(f"outbox   {ob['depth']} waiting, oldest {ob['oldest_age_s']} s, dead letters {s['dead_letters']['count']}")
    for m in s["meters"]:
        last = m["last"] or {}
        print(
            f"meter    {m['serial']:<20} {'up' if m['up'] else 'DOWN' if m['up'] is False else '?':<5}"
            f" import {last.get('import_wh')} Wh export {last.get('export_wh')} Wh"
            f" ok {m['reads_ok']} failed {m['reads_failed']}"
            + (f"  last error: {m['last_error']}" if m["last_error"] else "")
        )
    for a in s["alarms"]:
        print(f"ALARM    {a['message']}")
    return EXIT_FAIL if s["alarms"] else EXIT_OK


def _dispatch(args: argparse.Namespace, cfg: EdgeConfig) -> int:
    if args.command == "run":
        return _run(cfg)
    if args.command == "init":
        return _init(cfg)
    if args.command == "status":
        return _status(cfg, args.json)
    from edge.meter_setup import read_command, scan_command  # noqa: PLC0415

    # These commands print each meter's or unit's outcome themselves; pymodbus would also log every unit that does
    # not answer (with a hex dump of the frames) on stderr, hundreds of lines for a scan of 1-247.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.command == "read":
        return read_command(cfg, args.meter)
    return scan_command(cfg, args.port, args.kind, args.ids, args.listen)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args, _config(args))
    except EdgeError as e:
        print(f"gridtokenx-edge: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as e:
        if e.filename is None:
            raise
        # The state directory or a file in it cannot be created or opened: most often a command run as another user
        # than the service's (the state directory is the service user's, mode 0700).
        print(f"gridtokenx-edge: {e.filename}: {e.strerror} (run commands as the service user, e.g. sudo -u "
              "gridtokenx-edge gridtokenx-edge …; check [device] state_dir)", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return EXIT_FAIL
