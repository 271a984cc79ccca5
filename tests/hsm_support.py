"""Test helper: a private SoftHSM2 token (the PKCS#11 token the tests use for the platform's keys and the gateway's
device key). Each token lives in its own directory with its own ``softhsm2.conf``; ``SOFTHSM2_CONF`` points at it
while the token is in use, the module is re-initialised so that it reads it, and everything is removed afterwards.

SoftHSM2 comes from Debian (``softhsm2``; ``make setup`` installs it when missing)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gtxhsm import Pkcs11Settings
from gtxhsm.token import reload_module

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


@contextmanager
def softhsm_token(directory: Path, label: str = "gtx-test") -> Iterator[Pkcs11Settings]:
    """A fresh, initialised SoftHSM2 token in ``directory`` (created, then removed), its user PIN in a 0600 file."""
    assert SOFTHSM_MODULE.exists(), "SoftHSM2 is missing: apt-get install -y softhsm2 (make setup does it)"
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    pin_file = directory / "user.pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pin + "\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                        "--so-pin", so_pin], check=True, capture_output=True, env=dict(os.environ))
        reload_module(SOFTHSM_MODULE)  # the module reads SOFTHSM2_CONF (and finds the token) when initialised
        yield Pkcs11Settings(SOFTHSM_MODULE, label, pin_file)
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before
        shutil.rmtree(directory, ignore_errors=True)
