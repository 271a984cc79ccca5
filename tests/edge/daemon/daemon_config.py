"""The edge daemon tests' configuration: an ``edge.toml`` with private, fast values (``config_text``), Modbus meters on
a simulator port (``meters_toml``), simulated SDM630s (``sim_meters``) and the status page's password."""

from __future__ import annotations

from pathlib import Path

from edge.meters.maps import default_maps_dir, load_maps
from edge.simulator.modbus import SimulatedModbusMeter
from edge.simulator.profiles import FastClock, Kind, Profile, SimulatedRegisters
from tests.edge.daemon.central_peer import TEST_CENTRAL_KEY

PASSWORD = "technician-pw-1"


def config_text(state_dir: Path, *, mqtt_port: int = 1883, extra: str = "", status_port: int = 0) -> str:
    return f"""
[device]
state_dir = "{state_dir}"

[poll]
clock_check = "none"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
batch_size = 50
inflight_batches = 4
ack_timeout_s = 5
backlog_rate = 2000
backlog_start_jitter_s = 0
reconnect_min_s = 0.1
reconnect_max_s = 1

[central]
public_key = "{TEST_CENTRAL_KEY.device_id}"

[outbox]
min_free_mb = 0

[status]
bind = "127.0.0.1"
port = {status_port}
password = "{PASSWORD}"
refresh_s = 2
{extra}
"""


def meters_toml(sim_port: int, serials: list[str], interval_s: int = 1, model: str = "eastron-sdm630") -> str:
    out = f'\n[[bus]]\nname = "sim"\nkind = "modbus-tcp"\nhost = "127.0.0.1"\nport = {sim_port}\ntimeout_ms = 500\n'
    for i, s in enumerate(serials, start=1):
        out += (
            f'\n[[meter]]\nserial = "{s}"\nbus = "sim"\nmodel = "{model}"\nunit_id = {i}\n'
            f"poll_interval_s = {interval_s}\n"
        )
    return out


def p1_meter_toml(p1_port: int, serial: str, interval_s: int = 1) -> str:
    """One DSMR 5 P1 meter (the simulator's ``--p1-port``) on its own TCP bus."""
    return (
        f'\n[[bus]]\nname = "p1-{serial}"\nkind = "p1-tcp"\nhost = "127.0.0.1"\nport = {p1_port}\n'
        f'\n[[meter]]\nserial = "{serial}"\nbus = "p1-{serial}"\nmodel = "iskraemeco-am550-nl"\n'
        f"poll_interval_s = {interval_s}\nstale_after_s = 3\n"
    )


def sim_meters(count: int, speed: float = 60.0) -> list[object]:
    """``count`` simulated SDM630s (units 1..count, alternating prosumer/consumer) on a fast clock."""

    maps = load_maps(default_maps_dir())
    clock = FastClock(speed=speed)
    out: list[object] = []
    for unit in range(1, count + 1):
        kind = Kind.PROSUMER if unit % 2 else Kind.CONSUMER
        state = SimulatedRegisters(Profile(kind, seed=unit), clock(), import_wh=1_000_000, export_wh=300_000)
        out.append(SimulatedModbusMeter(unit, maps["eastron-sdm630"], state, clock))
    return out


DLMS_SERIAL = "LGZ-CIPH-1"


def dlms_ciphered(tmp: Path, port: int, serial: str = DLMS_SERIAL, interval_s: int = 1) -> tuple[str, tuple[str, ...]]:
    """A ciphered DLMS meter (HLS-GMAC, authenticated+encrypted APDUs): its ``[[bus]]``/``[[meter]]`` TOML (keys
    in a 0600 file beside it) and the simulator arguments serving it, with stats written to ``tmp/sim-stats.json``."""
    keys = tmp / f"{serial}.keys.toml"
    keys.write_text(f'ek = "{bytes(range(16)).hex()}"\nak = "{bytes(range(0xD0, 0xE0)).hex()}"\n')
    keys.chmod(0o600)
    toml = (
        f'\n[[bus]]\nname = "dlms-ciphered"\nkind = "dlms-tcp"\nhost = "127.0.0.1"\nport = {port}\ntimeout_ms = 1500\n'
        f'\n[[meter]]\nserial = "{serial}"\nbus = "dlms-ciphered"\nmodel = "landis-gyr-e450"\nauth = "hls-gmac"\n'
        f'security = "auth-enc"\nkeys_file = "{keys}"\npoll_interval_s = {interval_s}\n'
    )
    return toml, ("--dlms-ciphered-port", str(port), "--dlms-keys-file", str(keys), "--stats-file",
                  str(tmp / "sim-stats.json"))
