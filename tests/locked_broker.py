"""A private Mosquitto started from the shipped configuration (``firmware-config/mosquitto/mosquitto.conf``): the
dynamic-security plugin with the initial state ``gridtokenx-central broker init`` writes, anonymous clients refused,
a TLS listener and a plain one. Only what is deployment-specific is replaced: the plugin's path on this machine,
free ports on 127.0.0.1, files under the test's directory, no persistence, the log in a file. Stopped by its PID."""

from __future__ import annotations

import glob
import json
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from central.broker.acl import initial_config
from tests.pki import Pki, make_pki
from tests.services import free_port, mosquitto, terminate, wait_port

SHIPPED = Path(__file__).resolve().parent.parent / "firmware-config" / "mosquitto" / "mosquitto.conf"


def dynsec_plugin() -> str:
    found = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob("/usr/lib/mosquitto_dyn*.so"))
    if not found:
        raise FileNotFoundError("mosquitto_dynamic_security.so not found (Debian package mosquitto)")
    return found[0]


def local_config(shipped: str, *, workdir: Path, tls_port: int, plain_port: int, pki: Pki) -> str:
    """The shipped configuration with its deployment-specific lines replaced (every other line kept as it is)."""
    out: list[str] = []
    for line in shipped.splitlines():
        key, _, _value = line.strip().partition(" ")
        replaced = {
            "plugin": f"plugin {dynsec_plugin()}",
            "plugin_opt_config_file": f"plugin_opt_config_file {workdir / 'dynamic-security.json'}",
            "cafile": f"cafile {pki.ca}",
            "certfile": f"certfile {pki.server_cert}",
            "keyfile": f"keyfile {pki.server_key}",
            "persistence": "persistence false",
            "persistence_location": "",
            "log_dest": f"log_dest file {workdir / 'mosquitto.log'}",
        }.get(key)
        if line.strip() == "listener 8883":
            replaced = f"listener {tls_port} 127.0.0.1"
        elif line.strip() == "listener 1883":
            replaced = f"listener {plain_port} 127.0.0.1"
        out.append(line if replaced is None else replaced)
    # as root, mosquitto would switch to user "mosquitto", who cannot read files in pytest's 0700 tmp dirs
    return "\n".join(out) + "\nuser root\n"


@dataclass
class LockedBroker:
    workdir: Path
    central_username: str = "gtx-central"
    central_password: str = field(default_factory=lambda: uuid.uuid4().hex, repr=False)
    host: str = "127.0.0.1"
    tls_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)  # the plain listener
    started: bool = field(default=False, repr=False)
    pki: Pki | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> str:
        p = self.workdir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def central_password_file(self) -> Path:
        p = self.workdir / "central-broker-password"
        if not p.exists():
            p.touch(mode=0o600)
            p.write_text(self.central_password + "\n")
        return p

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.pki is None:
            self.pki = make_pki(self.workdir / "pki")
        state = self.workdir / "dynamic-security.json"
        if not state.exists():
            state.touch(mode=0o600)
            state.write_text(json.dumps(initial_config(self.central_username, self.central_password)))
        conf = self.workdir / "mosquitto.conf"
        for attempt in range(3):
            conf.write_text(local_config(SHIPPED.read_text(), workdir=self.workdir, tls_port=self.tls_port,
                                         plain_port=self.port, pki=self.pki))
            self.proc = mosquitto(conf)
            try:
                wait_port(self.host, self.port, proc=self.proc)
                wait_port(self.host, self.tls_port, proc=self.proc)
            except TimeoutError:
                self.stop()
                # a free port found here can be taken by another test process before Mosquitto binds it: it exits
                # ("Address already in use"); try again on fresh ports (first start only: clients of a restarted
                # broker keep its ports)
                if attempt == 2 or self.started:
                    raise TimeoutError(f"Mosquitto did not start; its log ends: {self.log[-2000:]}") from None
                self.port, self.tls_port = free_port(), free_port()
            else:
                self.started = True
                return

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None
