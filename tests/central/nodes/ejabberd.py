"""Test helper: a private ejabberd (Debian package) serving only MQTT (``mod_mqtt``) on a free port, with one
registered user, its state in a temporary directory; started with ``ejabberdctl foreground`` in its own process
group and stopped by that group's PID. ejabberd 23.01 has no MQTT shared subscriptions (docs/scaling.md)."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.services import free_port

CTL = Path("/usr/sbin/ejabberdctl")


@dataclass(frozen=True)
class Ejabberd:
    host: str
    port: int
    username: str
    password: str


@contextlib.contextmanager
def ejabberd() -> Iterator[Ejabberd]:
    assert CTL.exists(), "ejabberd is not installed (make setup installs it: .ci/services.sh)"
    top = Path(tempfile.mkdtemp(prefix="gtx-ejabberd-"))
    port, node = free_port(), f"gtx{secrets.token_hex(4)}@localhost"
    (top / "ejabberd.yml").write_text(
        "hosts: [localhost]\nloglevel: warning\nauth_method: [internal]\n"
        f"listen:\n  - port: {port}\n    ip: \"127.0.0.1\"\n    module: mod_mqtt\n    backlog: 1000\n"
        "modules:\n  mod_mqtt:\n    access_subscribe: {\"#\": all}\n    access_publish: {\"#\": all}\n")
    (top / "ctl.cfg").write_text("")
    (top / "inetrc").write_text("{lookup,[file,native]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n")
    for d in ("log", "db"):
        (top / d).mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("ejabberd")
        for p in (top, *top.rglob("*")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    argv = [str(CTL), "--config-dir", str(top), "--config", str(top / "ejabberd.yml"), "--ctl-config",
            str(top / "ctl.cfg"), "--logs", str(top / "log"), "--spool", str(top / "db"), "--node", node]
    out = (top / "out.log").open("wb")
    proc = subprocess.Popen([*argv, "foreground"], stdout=out, stderr=subprocess.STDOUT, cwd=top,
                            start_new_session=True)
    vm: int | None = None
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert proc.poll() is None, (top / "out.log").read_text()[-2000:]
            assert time.monotonic() < deadline, (top / "out.log").read_text()[-2000:]
            time.sleep(0.2)
        vm = _listener_pid(port)  # ejabberdctl runs the Erlang VM through su, in a session of its own
        password = secrets.token_urlsafe(12)
        subprocess.run([*argv, "register", "gtx", "localhost", password], check=True, capture_output=True,
                       timeout=60, cwd=top)
        yield Ejabberd("127.0.0.1", port, "gtx@localhost", password)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if vm is not None:  # the Erlang VM, by its PID, if it outlived its wrapper
            _stop_pid(vm)
        out.close()
        shutil.rmtree(top, ignore_errors=True)


def _listener_pid(port: int) -> int:
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], check=True, capture_output=True, text=True).stdout
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False
