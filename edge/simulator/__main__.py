"""``python -m edge.simulator``: run N simulated Modbus meters for the demo (TCP, or RTU on a serial line / pty).

Examples::

    python -m edge.simulator --port 5020 --count 4                 # units 1..4 on 127.0.0.1:5020, SDM630 maps
    python -m edge.simulator --port 5020 --meter 1:eastron-sdm630:prosumer --meter 2:carlo-gavazzi-em24:consumer
    python -m edge.simulator --pty --count 2 --speed 60            # RTU on a pty pair, time runs 60x faster
    python -m edge.simulator --port 5020 --count 2 --dlms-port 4059 # plus a DLMS/COSEM meter (gurux, dev extra)
    python -m edge.simulator --dlms-ciphered-port 4060 --dlms-keys-file keys.toml   # a ciphered DLMS meter
    python -m edge.simulator --dlms-push 127.0.0.1:4061 --dlms-keys-file keys.toml  # pushing ciphered notifications
    python -m edge.simulator --p1-port 8088 --p1-count 2           # DSMR 5 P1 meters pushing on TCP 8088, 8089
    python -m edge.simulator --p1-pty --p1-variant luxembourg-smarty --p1-key-file lu.key   # encrypted, on a pty

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
from edge.simulator.p1 import MAP_IDS, P1Simulator, SimulatedP1Meter
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
    p.add_argument("--dlms-ciphered-port", type=int, action="append", default=[],
                   help="also serve a ciphered DLMS meter (gurux secure server) on this port; repeat for more meters")
    p.add_argument("--dlms-auth", default="high-gmac", choices=["none", "low", "high-gmac"],
                   help="authentication of the ciphered meter's reading client (default high-gmac)")
    p.add_argument("--dlms-security", default="auth-enc", choices=list(_POLICIES),
                   help="APDU protection of the ciphered meter (security suite 0; default auth-enc)")
    p.add_argument("--dlms-keys-file", type=Path, default=None,
                   help="TOML file with ek and ak (hex) of the ciphered/pushing meter (default: fixed demo keys)")
    p.add_argument("--dlms-push", default=None, metavar="HOST:PORT",
                   help="push ciphered DATA-NOTIFICATIONs (a Kaifa-style customer interface) to this gateway port")
    p.add_argument("--dlms-push-period", type=float, default=1.0, help="seconds between pushes (default 1)")
    p.add_argument("--stats-file", type=Path, default=None,
                   help="on stop, write the DLMS meters' counters (rejected invocation counters, ...) here as JSON")
    p.add_argument("--p1-port", type=int, help="serve P1 meters pushing telegrams on TCP ports from this one up")
    p.add_argument("--p1-pty", action="store_true", help="serve one P1 meter on a new pty pair; prints the other end")
    p.add_argument("--p1-count", type=int, default=1, help="P1 meters with --p1-port (default 1)")
    p.add_argument("--p1-variant", default="dsmr5", choices=sorted(MAP_IDS), help="P1 telegram variant")
    p.add_argument("--p1-key-file", type=Path, help="AES key (32 hex digits) for encrypted variants")
    p.add_argument("--p1-kind", choices=[k.value for k in Kind], default="prosumer",
                   help="household of the first P1 meter; the next ones alternate (default prosumer)")
    p.add_argument("--p1-period", type=float, default=1.0, help="seconds between two telegrams (default 1)")
    return p


_POLICIES = {"none": 0x00, "auth": 0x10, "enc": 0x20, "auth-enc": 0x30}
#: Demo keys for ``make demo`` and tests (never a real meter's): EK 00..0f, AK d0..df.
DEMO_KEYS = (bytes(range(16)), bytes(range(0xD0, 0xE0)))
CIPHERED_TITLE = bytes.fromhex("4C475A0012345678")  # the ciphered meter's system title
PUSH_TITLE = bytes.fromhex("4B464D0000000309")  # the pushing meter's system title


def _keys(path: Path | None) -> tuple[bytes, bytes]:
    if path is None:
        return DEMO_KEYS
    import tomllib  # noqa: PLC0415

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return bytes.fromhex(data["ek"]), bytes.fromhex(data["ak"])
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError):
        raise ConfigError(f"--dlms-keys-file {path}: expected ek = \"<32 hex>\" and ak = \"<32 hex>\"") from None


async def _serve_p1(args: argparse.Namespace, clock: FastClock, stack: contextlib.AsyncExitStack) -> list[object]:
    """The P1 meters of ``--p1-port``/``--p1-pty``; their endpoints for the ready line."""
    if args.p1_port is None and not args.p1_pty:
        return []
    key = None
    if args.p1_variant == "luxembourg-smarty":
        if args.p1_key_file is None:
            raise ConfigError("--p1-variant luxembourg-smarty needs --p1-key-file")
        key = bytes.fromhex(args.p1_key_file.read_text().strip())
    out: list[object] = []
    for i in range(1 if args.p1_pty else args.p1_count):
        kinds = (Kind(args.p1_kind), Kind.CONSUMER if args.p1_kind == "prosumer" else Kind.PROSUMER)
        state = SimulatedRegisters(Profile(kinds[i % 2], pv_peak_w=args.pv_peak_w, seed=200 + i), clock(),
                                   import_wh=args.start_import_wh, export_wh=args.start_export_wh)
        sim = await stack.enter_async_context(
            P1Simulator(SimulatedP1Meter(args.p1_variant, state, clock, key=key), period_s=args.p1_period)
        )
        endpoint: dict[str, object] = {"variant": args.p1_variant, "model": MAP_IDS[args.p1_variant]}
        if args.p1_pty:
            pair = await stack.enter_async_context(PtyPair())
            sim.serve_serial(pair.a)
            endpoint |= {"kind": "p1-serial", "device": pair.b}
        else:
            port = await sim.serve_tcp(args.host, args.p1_port + i)
            endpoint |= {"kind": "p1-tcp", "host": args.host, "port": port}
        out.append(endpoint)
    return out


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
    dlms_any = args.dlms_port is not None or bool(args.dlms_ciphered_port) or args.dlms_push is not None
    p1_wanted = args.p1_port is not None or args.p1_pty
    if not modbus_endpoint and not dlms_any and not p1_wanted:
        raise ConfigError("nothing to serve: give --port, --device, --pty, --dlms-port, --dlms-ciphered-port, "
                          "--dlms-push and/or --p1-port/--p1-pty")
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
        if args.dlms_ciphered_port or args.dlms_push is not None:
            ready.update(await _ciphered(args, clock, stack))
        if p1_wanted:
            ready["p1"] = await _serve_p1(args, clock, stack)
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


async def _ciphered(args: argparse.Namespace, clock: FastClock, stack: contextlib.AsyncExitStack) -> dict[str, object]:
    from edge.simulator.dlms_gurux import (  # noqa: PLC0415 - gurux is dev-only
        DlmsMeterModel,
        DlmsMeterSecurity,
        DlmsPushSender,
        DlmsTcpSimulator,
    )

    ek, ak = _keys(args.dlms_keys_file)
    out: dict[str, object] = {}
    models: dict[str, DlmsMeterModel] = {}
    for i, port in enumerate(args.dlms_ciphered_port):
        state = SimulatedRegisters(Profile(Kind.PROSUMER, pv_peak_w=args.pv_peak_w, seed=98 - i), clock(),
                                   import_wh=args.start_import_wh, export_wh=args.start_export_wh)
        title = CIPHERED_TITLE[:7] + bytes([CIPHERED_TITLE[7] + i])
        sec = DlmsMeterSecurity(ek=ek, ak=ak, system_title=title, authentication=args.dlms_auth,
                                policy=_POLICIES[args.dlms_security])
        password = args.dlms_password.encode() if args.dlms_password else None
        name = "ciphered" if i == 0 else f"ciphered-{i + 1}"
        models[name] = model = DlmsMeterModel(state, clock, password=password, security=sec,
                                              logical_device_name=b"LGZ" + title[3:].hex().encode())
        await stack.enter_async_context(DlmsTcpSimulator(model, port=port, host=args.host))
        out.setdefault("dlms_ciphered", {"kind": "dlms-tcp", "host": args.host, "port": port,
                                         "model": "landis-gyr-e450", "auth": args.dlms_auth,
                                         "security": args.dlms_security})
    if len(args.dlms_ciphered_port) > 1:
        out["dlms_ciphered_ports"] = list(args.dlms_ciphered_port)
    if args.dlms_push is not None:
        host, _, port = str(args.dlms_push).rpartition(":")
        state = SimulatedRegisters(Profile(Kind.CONSUMER, seed=97), clock(), import_wh=args.start_import_wh,
                                   export_wh=args.start_export_wh)
        models["push"] = model = DlmsMeterModel(
            state, clock, security=DlmsMeterSecurity(ek=ek, ak=ak, system_title=PUSH_TITLE, authentication="none"))
        try:
            sender = DlmsPushSender(model, host=host or "127.0.0.1", port=int(port), period_s=args.dlms_push_period)
        except ValueError:
            raise ConfigError(f"--dlms-push {args.dlms_push!r}: expected HOST:PORT") from None
        await stack.enter_async_context(sender)
        out["dlms_push"] = {"to": args.dlms_push, "model": "kaifa-ma309-push", "system_title": PUSH_TITLE.hex()}
    if args.stats_file is not None:
        stats_file: Path = args.stats_file

        def write_stats() -> None:
            stats = {name: {"rejected": m.security.rejected if m.security else 0,
                            "next_client_counter": m.security.next_client_counter if m.security else 0,
                            "reads": m.reads, "pushes": m.pushes} for name, m in models.items()}
            stats_file.write_text(json.dumps(stats))

        stack.callback(write_stats)
    return out


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
