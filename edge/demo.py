"""A ready-made config for demos: the daemon against ``python -m edge.simulator`` and a local broker.

Used by the project's ``make demo``::

    from edge.demo import write_demo_config
    cfg = write_demo_config(Path(".demo/edge"), mqtt_port=1883, sim_port=5020, meters=4, speed=60,
                            central_public_key="<central's public key, base58>")
    # python -m edge.simulator --port 5020 --count 4 --speed 60      (prints {"ready": true, ...})
    # gridtokenx-edge --config .demo/edge/edge.toml run               (JSON logs on stdout)

or from a shell: ``python -m edge.demo .demo/edge --central-public-key KEY --mqtt-port 1883 --sim-port 5020
--meters 4 --speed 60`` prints the path.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
from pathlib import Path

from edge.outbox import MAX_POWER_W

DEMO_SERIAL_PREFIX = "DEMO-SDM630-"
DEMO_DLMS_SERIAL = "DEMO-E450-01"
#: The simulator's demo keys (``python -m edge.simulator`` without --dlms-keys-file): never a real meter's.
DEMO_DLMS_KEYS = 'ek = "000102030405060708090a0b0c0d0e0f"\nak = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"\n'
#: the demo's DSMR P1 meter (``--p1``): a DSMR 5 meter pushing telegrams over TCP, like a ser2net or Wi-Fi dongle
DEMO_P1_SERIAL = "DEMO-P1-01"


def demo_config_text(
    state_dir: Path,
    *,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    sim_host: str = "127.0.0.1",
    sim_port: int = 5020,
    meters: int = 4,
    interval_s: int = 5,
    status_port: int = 8080,
    status_password: str,
    central_public_key: str,
    dlms_ciphered_port: int | None = None,
    dlms_keys_file: Path | None = None,
    p1_port: int | None = None,
    speed: float = 1.0,
) -> str:
    lines = [
        "# Demo configuration written by edge.demo: simulated meters, local broker, no TLS.",
        "[device]",
        f'state_dir = "{state_dir}"',
        "[poll]",
        'clock_check = "none"',
        *(
            [f"# the simulator's time runs {speed:g}x faster: its meters' registers rise that much faster too",
             f"max_power_w = {math.ceil(MAX_POWER_W * speed)}"]
            if speed > 1 else []
        ),
        "[mqtt]",
        f'host = "{mqtt_host}"',
        f"port = {mqtt_port}",
        "backlog_start_jitter_s = 0",
        "reconnect_min_s = 0.5",
        "reconnect_max_s = 10",
        "[central]",
        f'public_key = "{central_public_key}"',
        "[outbox]",
        "min_free_mb = 50",
        "[status]",
        'bind = "127.0.0.1"',
        f"port = {status_port}",
        f'password = "{status_password}"',
        "refresh_s = 5",
        "[[bus]]",
        'name = "simulator"',
        'kind = "modbus-tcp"',
        f'host = "{sim_host}"',
        f"port = {sim_port}",
    ]
    for unit in range(1, meters + 1):
        lines += [
            "[[meter]]",
            f'serial = "{DEMO_SERIAL_PREFIX}{unit:02d}"',
            'bus = "simulator"',
            'model = "eastron-sdm630"',
            f"unit_id = {unit}",
            f"poll_interval_s = {interval_s}",
        ]
    if dlms_ciphered_port is not None:  # a ciphered household meter: HLS-GMAC, authenticated+encrypted APDUs
        lines += [
            "[[bus]]", 'name = "dlms-ciphered"', 'kind = "dlms-tcp"', f'host = "{sim_host}"',
            f"port = {dlms_ciphered_port}",
            "[[meter]]", f'serial = "{DEMO_DLMS_SERIAL}"', 'bus = "dlms-ciphered"', 'model = "landis-gyr-e450"',
            'auth = "hls-gmac"', 'security = "auth-enc"', f'keys_file = "{dlms_keys_file}"',
            f"poll_interval_s = {interval_s}",
        ]
    if p1_port is not None:
        lines += [
            "[[bus]]",
            'name = "p1"',
            'kind = "p1-tcp"',
            f'host = "{sim_host}"',
            f"port = {p1_port}",
            "[[meter]]",
            f'serial = "{DEMO_P1_SERIAL}"',
            'bus = "p1"',
            'model = "iskraemeco-am550-nl"',
            f"poll_interval_s = {interval_s}",
        ]
    return "\n".join(lines) + "\n"


def write_demo_config(
    directory: Path,
    *,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    sim_port: int = 5020,
    meters: int = 4,
    interval_s: int = 5,
    status_port: int = 8080,
    status_password: str | None = None,
    central_public_key: str,
    dlms_ciphered_port: int | None = None,
    p1_port: int | None = None,
    speed: float = 1.0,
) -> Path:
    """Write ``directory/edge.toml`` (state in ``directory/state``), mode 0600; returns its path. With
    ``dlms_ciphered_port`` a ciphered DLMS meter is added, its keys in ``directory/dlms.keys.toml`` (0600). ``speed``
    is the simulator's (``--speed``): the gateway's register-rise bound is raised by it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "edge.toml"
    keys: Path | None = None
    if dlms_ciphered_port is not None:
        keys = directory.resolve() / "dlms.keys.toml"
        keys.touch(mode=0o600)
        keys.write_text(DEMO_DLMS_KEYS, encoding="utf-8")
    text = demo_config_text(
        directory.resolve() / "state",
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        sim_port=sim_port,
        meters=meters,
        interval_s=interval_s,
        status_port=status_port,
        status_password=status_password or secrets.token_urlsafe(12),
        central_public_key=central_public_key,
        dlms_ciphered_port=dlms_ciphered_port,
        dlms_keys_file=keys,
        p1_port=p1_port,
        speed=speed,
    )
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    return path


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m edge.demo", description="write a demo edge.toml")
    ap.add_argument("directory", type=Path)
    ap.add_argument("--mqtt-host", default="127.0.0.1")
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--sim-port", type=int, default=5020)
    ap.add_argument("--meters", type=int, default=4)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--status-port", type=int, default=8080)
    ap.add_argument("--status-password", default=None)
    ap.add_argument("--central-public-key", required=True, help="central's public key (base58), pinned by the edge")
    ap.add_argument("--p1-port", type=int, default=None, help="also a DSMR P1 meter (simulator's --p1-port)")
    ap.add_argument("--speed", type=float, default=1.0, help="the simulator's --speed (raises the register-rise bound)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    path = write_demo_config(
        a.directory, mqtt_host=a.mqtt_host, mqtt_port=a.mqtt_port, sim_port=a.sim_port, meters=a.meters,
        interval_s=a.interval, status_port=a.status_port, status_password=a.status_password,
        central_public_key=a.central_public_key, p1_port=a.p1_port, speed=a.speed,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
