"""Stage 3 of the demo, through central's HTTP API only: accounts (e-mail verification read from the development
mailer), the gateway provisioned through the MQTT challenge, meters claimed with their meter keys, wallets linked
by signature, and verified readings flowing in."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from demo_support.api import Api, User
from demo_support.report import kwh, say
from demo_support.stack import Stack
from solders.keypair import Keypair

from edge.demo import DEMO_DLMS_SERIAL
from protocol.base58 import b58encode
from protocol.record import decode_reading


@dataclass
class Owner(User):
    """A prosumer or consumer: their meter (serial, meter key from the utility, id once claimed) and wallet."""

    serial: str = ""
    meter_key: str = field(default="", repr=False)
    meter_id: str = ""
    wallet: Keypair = field(default_factory=Keypair, repr=False)

    @property
    def address(self) -> str:
        return str(self.wallet.pubkey())


@dataclass
class Cast:
    admin: User
    installer: User
    authority: User
    owners: list[Owner]

    @property
    def prosumers(self) -> list[Owner]:
        return [o for o in self.owners if o.role == "prosumer"]

    @property
    def consumers(self) -> list[Owner]:
        return [o for o in self.owners if o.role == "consumer"]


NAMES = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana"]


def make_cast(stack: Stack) -> Cast:
    def pw() -> str:
        return secrets.token_urlsafe(12)

    owners = []
    for i, serial in enumerate(stack.serials()):
        # the simulator alternates prosumer/consumer meters too; its ciphered DLMS meter is a prosumer
        role = "prosumer" if i % 2 == 0 or serial == DEMO_DLMS_SERIAL else "consumer"
        name = NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else str(i))
        owners.append(Owner(name, f"{name.lower()}@demo.gridtokenx.local", pw(), role, serial=serial,
                            meter_key=secrets.token_urlsafe(12)))
    return Cast(User("admin", "admin@demo.gridtokenx.local", pw(), "admin"),
                User("installer", "ivy.installer@demo.gridtokenx.local", pw(), "installer"),
                User("REC authority", "rec@demo.gridtokenx.local", pw(), "rec_authority"), owners)


def verification_token(mail_dir: Path, email: str) -> str:
    """The token of the newest verification e-mail to ``email`` that the development mailer recorded."""
    for file in sorted(mail_dir.glob("*.json"), reverse=True):
        mail = json.loads(file.read_text(encoding="utf-8"))
        if mail.get("to") == email.lower() and mail.get("kind") == "verify":
            return str(mail["token"])
    raise RuntimeError(f"no verification e-mail to {email} in {mail_dir}")


async def login(api: Api, user: User) -> None:
    pair = await api.post("/api/v1/auth/login", {"email": user.email, "password": user.password})
    user.token, user.id = pair["access_token"], pair["user"]["id"]


async def register(api: Api, stack: Stack, user: User) -> None:
    await api.post("/api/v1/auth/register", {"email": user.email, "password": user.password, "role": user.role})
    token = verification_token(stack.settings.state / "mail", user.email)
    await api.post("/api/v1/auth/verify-email", {"token": token})
    await login(api, user)


async def accounts(api: Api, stack: Stack, cast: Cast) -> None:
    pw_file = stack.settings.state / "admin.password"
    pw_file.write_text(cast.admin.password + "\n", encoding="utf-8")
    pw_file.chmod(0o600)
    r = stack.central_cli("users", "create", "--email", cast.admin.email, "--role", "admin",
                          "--password-file", str(pw_file))
    pw_file.unlink()
    if r.returncode != 0:
        raise RuntimeError(f"gridtokenx-central users create failed (exit {r.returncode}): {r.stderr.strip()}")
    await login(api, cast.admin)
    say(f"admin            {cast.admin.email} (gridtokenx-central users create)")
    for staff in (cast.installer, cast.authority):
        await api.post("/api/v1/admin/users", {"email": staff.email, "password": staff.password, "role": staff.role},
                       cast.admin)
        await login(api, staff)
        say(f"{staff.role:<16} {staff.email} (account created by the admin through the API)")
    await asyncio.gather(*(register(api, stack, o) for o in cast.owners))
    for o in cast.owners:
        say(f"{o.role:<16} {o.email} (self-registered; e-mail verified with the token from the dev mailer)")


async def read_pairing_code(api: Api, stack: Stack) -> str:
    """What the installer reads off the gateway's password-protected status page (protocol §10): its pairing code."""
    auth = aiohttp.BasicAuth("installer", stack.status_password)
    async with api.session.get(f"{stack.status_url}api/status", auth=auth) as r:
        r.raise_for_status()
        status: dict[str, Any] = await r.json()
    code = status.get("pairing_code")
    if not isinstance(code, str) or not code:
        raise RuntimeError("the gateway's status page shows no pairing code")
    say(f"installer read the pairing code {code} off the gateway's status page ({stack.status_url})")
    return code


async def provision_gateway(api: Api, stack: Stack, cast: Cast, pairing_code: str) -> dict[str, Any]:
    """Register the gateway with its pairing code, and its meters (meter keys as the utility would issue them)."""
    meters = [{"serial": o.serial, "meter_key": o.meter_key, "source": "solar" if o.role == "prosumer" else None,
               **({"model": "Landis+Gyr E450", "protocol": "dlms-tcp"} if o.serial == DEMO_DLMS_SERIAL
                  else {"model": "Eastron SDM630", "protocol": "modbus-tcp"})} for o in cast.owners]
    device: dict[str, Any] = await api.post("/api/v1/devices", {
        "device_id": stack.device_id, "pairing_code": pairing_code, "site_label": "Demo street 1, Sunnyvale",
        "meters": meters}, cast.installer)
    say(f"installer registered gateway {device['device_id']} with {len(device['meters'])} meters and its pairing "
        f"code: status {device['status']}")
    return device


async def verify_gateway(api: Api, stack: Stack, cast: Cast, timeout_s: float = 30) -> dict[str, Any]:
    """Central challenges the gateway over MQTT (at registration and when the gateway comes online; the installer may
    ask for another), signed with central's key and keyed with the pairing code; the running edge daemon checks both
    and signs it with its device key; central marks the gateway verified."""
    path = f"/api/v1/devices/{stack.device_id}"
    started = time.monotonic()
    deadline = started + timeout_s
    asked_at = started
    device: dict[str, Any] = {}
    while time.monotonic() < deadline:
        device = await api.get(path, cast.installer)
        if device["status"] == "verified":
            say("central challenged the gateway over MQTT (gtx/v1/d/<id>/challenge, signed by central, paired by the "
                f"code); the edge daemon signed it with its device key:\n    status {device['status']} at "
                f"{device['verified_at'][11:19]} UTC")
            return device
        if time.monotonic() - asked_at > 3:
            await api.post(f"{path}/challenge", None, cast.installer)
            asked_at = time.monotonic()
            say("installer asked central for a fresh challenge (POST .../challenge)")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"gateway not verified within {timeout_s:.0f} s (status {device.get('status')})")


async def claim_and_link(api: Api, cast: Cast) -> None:
    for o in cast.owners:
        meter = await api.post("/api/v1/meters/claim", {"serial": o.serial, "meter_key": o.meter_key}, o)
        o.meter_id = meter["id"]
        challenge = await api.post("/api/v1/wallet/link-challenge", {"wallet": o.address}, o)
        signature = o.wallet.sign_message(challenge["message"].encode("utf-8"))
        wallet = await api.post("/api/v1/wallet/link", {"message": challenge["message"],
                                                         "signature": b58encode(bytes(signature))}, o)
        say(f"{o.label:<5} claimed {o.serial} (meter key) and linked wallet {wallet['address']} (signed message)")


async def readings_flowing(api: Api, cast: Cast, want: int = 3, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    pages: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        pages = {o.label: await api.get(f"/api/v1/meters/{o.meter_id}/readings", o, limit=1000) for o in cast.owners}
        if all(len(p["readings"]) >= want for p in pages.values()):
            break
        await asyncio.sleep(1)
    for o in cast.owners:
        items = pages[o.label]["readings"]
        if not items:
            raise RuntimeError(f"no verified readings for {o.serial} within {timeout_s:.0f} s")
        last = items[-1]
        record = decode_reading(bytes.fromhex(last["record"]))  # re-verifies the gateway's signature here
        say(f"{o.serial}  {len(items):>3} readings, last seq {record.seq:>4}: import {kwh(record.import_wh):>14}, "
            f"export {kwh(record.export_wh):>14}, {record.power_w:>6} W")
    say("(each shown record was decoded from its stored signed bytes and its Ed25519 signature re-checked here)")
    say(f"central's ingest so far (/metrics): {ingest_summary(await ingest_outcomes(api))}")


async def ingest_outcomes(api: Api) -> dict[str, int]:
    """Reading records by ingest outcome, from central's Prometheus metrics."""
    out: dict[str, int] = {}
    for m in re.finditer(r'^gtx_ingest_records_total\{outcome="([^"]+)"\} (\S+)$', await api.text("/metrics"), re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + int(float(m.group(2)))
    return out


def ingest_summary(outcomes: dict[str, int]) -> str:
    accepted = outcomes.get("accepted", 0)
    others = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "accepted")
    return f"{accepted} records accepted" + (f"; {others}" if others else "")
