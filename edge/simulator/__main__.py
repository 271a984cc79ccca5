"""``python -m edge.simulator``: run N simulated Modbus meters for the demo (TCP, or RTU on a serial line / pty).

Examples::

    python -m edge.simulator --port 5020 --count 4                 # units 1..4 on 127.0.0.1:5020, SDM630 maps
    python -m edge.simulator --port 5020 --meter 1:eastron-sdm630:prosumer --meter 2:carlo-gavazzi-em24:consumer
    python -m edge.simulator --pty --count 2 --speed 60            # RTU on a pty pair, time runs 60x faster
    python -m edge.simulator --port 5020 --count 2 --dlms-port 4059 # plus a DLMS/COSEM meter (gurux, dev extra)

On start it prints one JSON line (``{"ready": true, ...}``) naming the endpoint (for ``--pty`` the device the
gateway should open) and the meters, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.errors import ConfigError
from edge.meters.maps import MeterProtocol, default_maps_dir, load_maps
from edge.simulator.modbus import ModbusSimulator, SimulatedModbusMeter
from edge.simulator.profiles import FastClock, Kind, Profile, SimulatedRegisters
from edge.simulator.ptypair import PtyPair


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge.simulator", description="Simulated Modbus energy meters")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, help="serve Modbus TCP on this port")
    where.add_argument("--device", help="serve Modbus RTU on this serial device")
    where.add_argument("--pty", action="store_true", help="serve Modbus RTU on a new pty pair; prints the other end")
    p.add_argument("--host", default="127.0.0.1", help="TCP bind address (default 127.0.0.1)")
    p.add_argument("--baudrate", type=int, default=9600)
    p.add_argument("--count", type=int, default=0, help="N meters on units 1..N, alternating prosumer/consumer")
    p.add_argument("--model", default="eastron-sdm630", help="map id used with --count (default eastron-sdm630)")
    p.add_argument(
        "--meter", action="append", default=[], metavar="UNIT:MODEL:KIND", help="one meter (kind: prosumer|consumer)"
    )
    p.add_argument("--maps", type=Path, default=None, help="meter map directory (default firmware-config/meters)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    p.add_argument("--pv-peak-w", type=int, default=5000)
    p.add_argument("--start-import-wh", type=int, default=1_250_000)
    p.add_argument("--start-export-wh", type=int, default=400_000)
    p.add_argument("--dlms-port", type=int, help="also serve one DLMS/COSEM meter (gurux-dlms, dev extra) on this port")
    p.add_argument("--dlms-password", default=None, help="LLS password of the DLMS meter (default: public client only)")
    return p


def _meters(args: argparse.Namespace, clock: FastClock) -> list[SimulatedModbusMeter]:
    maps = load_maps(args.maps or default_maps_dir())
    specs = [(i + 1, str(args.model), Kind.PROSUMER if i % 2 == 0 else Kind.CONSUMER) for i in range(args.count)]
    for text in args.meter:
        try:
            unit, model, kind = text.split(":")
            specs.append((int(unit), model, Kind(kind)))
        except ValueError:
            raise ConfigError(f"--meter {text!r}: expected UNIT:MODEL:prosumer|consumer") from None
    if not specs and (args.port is not None or args.device or args.pty):
        raise ConfigError("no meters: give --count N or --meter UNIT:MODEL:KIND")
    meters = []
    now = clock()
    for unit, model, kind in specs:
        meter_map = maps.get(model)
        if meter_map is None or meter_map.protocol is not MeterProtocol.MODBUS:
            raise ConfigError(f"unknown Modbus meter map {model!r} (known: {', '.join(sorted(maps))})")
        profile = Profile(kind, pv_peak_w=args.pv_peak_w, seed=unit)
        state = SimulatedRegisters(profile, now, import_wh=args.start_import_wh, export_wh=args.start_export_wh)
        meters.append(SimulatedModbusMeter(unit, meter_map, state, clock))
    return meters


async def _serve(args: argparse.Namespace) -> None:
    clock = FastClock(speed=args.speed)
    meters = _meters(args, clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    modbus_endpoint = args.port is not None or bool(args.device) or args.pty
    if not modbus_endpoint and args.dlms_port is None:
        raise ConfigError("nothing to serve: give --port, --device, --pty and/or --dlms-port")
    if meters and not modbus_endpoint:
        raise ConfigError("Modbus meters need --port, --device or --pty")
    ready: dict[str, object] = {"ready": True}
    async with contextlib.AsyncExitStack() as stack:
        if args.dlms_port is not None:
            from edge.simulator.dlms_gurux import DlmsMeterModel, DlmsTcpSimulator  # noqa: PLC0415 - gurux is dev-only

            state = SimulatedRegisters(Profile(Kind.PROSUMER, pv_peak_w=args.pv_peak_w, seed=99), clock(),
                               import_wh=args.start_import_wh, export_wh=args.start_export_wh)
            password = args.dlms_password.encode() if args.dlms_password else None
            dlms = DlmsTcpSimulator(DlmsMeterModel(state, clock, password=password), port=args.dlms_port,
                                    host=args.host)
            await stack.enter_async_context(dlms)
            ready["dlms"] = {"kind": "dlms-tcp", "host": args.host, "port": args.dlms_port, "model": "dlms-generic"}
        if not meters:
            print(json.dumps(ready), flush=True)
            await stop.wait()
            return
        if args.port is not None:
            sim = ModbusSimulator.tcp(meters, host=args.host, port=args.port)
            endpoint = {"kind": "modbus-tcp", "host": args.host, "port": args.port}
        else:
            device = args.device
            if args.pty:
                pair = await stack.enter_async_context(PtyPair())
                device = pair.a
                endpoint = {"kind": "modbus-rtu", "device": pair.b, "baudrate": args.baudrate}
            else:
                endpoint = {"kind": "modbus-rtu", "device": device, "baudrate": args.baudrate}
            sim = ModbusSimulator.rtu(meters, device=device, baudrate=args.baudrate)
        await stack.enter_async_context(sim)
        ready["endpoint"] = endpoint
        ready["meters"] = [
            {"unit_id": m.unit_id, "model": m.meter_map.id, "kind": m.state.profile.kind} for m in meters
        ]
        print(json.dumps(ready), flush=True)  # the CLI's one machine-readable output line
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
