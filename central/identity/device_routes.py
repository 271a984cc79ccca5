"""HTTP routes for gateways: installers register devices and meters and run the HTTP challenge; admins suspend,
reinstate and revoke."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from aiohttp import web

from central.http import Call, Role, RouteTable, meta, roles
from central.http.errors import bad_request
from central.identity.http_errors import ERRORS
from central.identity.model import Device, MeterInfo, NewMeter

routes = RouteTable(tag="devices", error_map=ERRORS)
INSTALLERS = roles(Role.INSTALLER, Role.ADMIN)
ADMINS = roles(Role.ADMIN)

#: Meter serials as the protocol allows them (printable ASCII, no space, 1..32 bytes).
SERIAL = meta(pattern=r"[\x21-\x7e]{1,32}", example="EM-000123")


@dataclass(frozen=True)
class MeterIn:
    serial: str = field(metadata=SERIAL)
    model: str = field(metadata=meta(min_length=1, max_length=100, example="Eastron SDM630"))
    protocol: str = field(metadata=meta(min_length=1, max_length=40, example="modbus-tcp"))
    meter_key: str = field(metadata=meta(min_length=8, max_length=200, write_only=True,
                                         description="the meter key issued by the utility (stored as bcrypt)"))
    source: str | None = field(default=None, metadata=meta(max_length=40, example="solar",
                                                           description="renewable source, or null"))


@dataclass(frozen=True)
class RegisterDeviceIn:
    device_id: str = field(metadata=meta(min_length=32, max_length=44, description="base58 Ed25519 public key"))
    pairing_code: str = field(metadata=meta(
        pattern=r"[0-9A-Za-z -]{8,12}", example="2E7G-BNFZ", write_only=True,
        description="the 8-character Crockford base32 code shown only on the gateway's status page and QR code"
                    " (case, '-' and spaces ignored); challenges carry a MAC keyed with it (protocol §10)"))
    site_label: str = field(default="", metadata=meta(max_length=200))
    meters: list[MeterIn] = field(default_factory=list, metadata=meta(max_length=64))


@dataclass(frozen=True)
class MeterInfoOut:
    serial: str
    model: str
    protocol: str
    source: str | None
    claimed: bool


@dataclass(frozen=True)
class DeviceOut:
    device_id: str
    status: str
    site_label: str
    installer_id: UUID | None
    created_at: datetime
    verified_at: datetime | None
    online: bool
    last_seen_at: datetime | None
    meters: list[MeterInfoOut]
    outbox_depth: int | None = field(default=None, metadata=meta(
        description="readings waiting on the gateway for central's ack (from its last status message)"))
    outbox_oldest_age_s: int | None = field(default=None, metadata=meta(
        description="age of the oldest of them, seconds"))
    meters_down: int | None = field(default=None, metadata=meta(description="meters whose last read failed"))
    alarms: list[str] = field(default_factory=list, metadata=meta(
        description="keys of the gateway's alarms (clock, meters_down, outbox_large, ...); texts on its status page"))


@dataclass(frozen=True)
class ChallengeOut:
    """A challenge in central's signed envelope (protocol §10): ``body`` is ``{"v":1,"nonce":"<64 hex>",
    "expires_ms":<int>,"pairing_mac":"<64 hex>"}``. The gateway checks the envelope and the pairing MAC, then signs
    ``"GTX/challenge/v1\\0" | nonce | public key | expires_ms (i64 LE)`` with its key (protocol §3)."""

    kind: str = field(metadata=meta(description="challenge"))
    device: str = field(metadata=meta(description="the device id the challenge is for"))
    body: str = field(metadata=meta(description="the challenge JSON, as a string"))
    sig: str = field(metadata=meta(description="central's Ed25519 signature, 128 hex digits"))
    v: Literal[1] = field(default=1, metadata=meta(description="message format version (protocol)"))


@dataclass(frozen=True)
class ChallengeAnswerIn:
    nonce: str = field(metadata=meta(pattern="[0-9a-f]{64}"))
    signature: str = field(metadata=meta(pattern="[0-9a-f]{128}"))


@dataclass(frozen=True)
class ChallengeSent:
    sent: bool


@dataclass(frozen=True)
class StatusChangeIn:
    reason: str = field(default="", metadata=meta(max_length=500))


@dataclass(frozen=True)
class DevicePage:
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))
    after: str | None = None


def device_out(d: Device) -> DeviceOut:
    return DeviceOut(d.device_id, d.status, d.site_label, d.installer_id, d.created_at, d.verified_at, d.online,
                     d.last_seen_at, [_meter(m) for m in d.meters], d.outbox_depth, d.outbox_oldest_age_s,
                     d.meters_down, list(d.alarms))


def _meter(m: MeterInfo) -> MeterInfoOut:
    return MeterInfoOut(m.serial, m.model, m.protocol, m.source, m.claimed)


def _new(meters: list[MeterIn]) -> list[NewMeter]:
    return [NewMeter(m.serial, m.model, m.protocol, m.source, m.meter_key) for m in meters]


@routes.post("/api/v1/devices", access=INSTALLERS, body=RegisterDeviceIn, response=DeviceOut, status=201,
             errors=(409,), summary="Register a gateway and its meters; a challenge is sent to it over MQTT")
async def register_device(call: Call[RegisterDeviceIn, None]) -> DeviceOut:
    b = call.body
    device = await call.services.identity.devices.register(b.device_id, b.site_label, _new(b.meters), call.user.user_id,
                                                       b.pairing_code)
    return device_out(device)


@routes.get("/api/v1/devices", access=INSTALLERS, query=DevicePage, response=list[DeviceOut],
            summary="My gateways (admins: all); cursor = last device_id of the previous page")
async def list_devices(call: Call[None, DevicePage]) -> list[DeviceOut]:
    devices = await call.services.identity.devices.list_devices(user_id=call.user.user_id, role=call.user.role,
                                                    limit=call.query.limit, after=call.query.after)
    return [device_out(d) for d in devices]


@routes.get("/api/v1/devices/{device_id}", access=INSTALLERS, response=DeviceOut, errors=(404,),
            summary="One gateway")
async def get_device(call: Call[None, None]) -> DeviceOut:
    device = await call.services.identity.devices.get(call.path("device_id"), user_id=call.user.user_id,
                                                  role=call.user.role)
    return device_out(device)


@routes.post("/api/v1/devices/{device_id}/meters", access=INSTALLERS, body=list[MeterIn], response=DeviceOut,
             status=201, errors=(404, 409), summary="Add meters to a gateway")
async def add_meters(call: Call[list[MeterIn], None]) -> DeviceOut:
    device = await call.services.identity.devices.add_meters(call.path("device_id"), _new(call.body),
                                                         user_id=call.user.user_id, role=call.user.role)
    return device_out(device)


@routes.post("/api/v1/devices/{device_id}/challenge", access=INSTALLERS, response=ChallengeSent, status=202,
             errors=(404, 409), summary="Send a fresh challenge to the gateway over MQTT")
async def send_challenge(call: Call[None, None]) -> ChallengeSent:
    ids = call.services.identity.devices
    await ids.get(call.path("device_id"), user_id=call.user.user_id, role=call.user.role)
    await ids.grant_broker_access(call.path("device_id"), replace=False)  # repairs a grant that failed
    return ChallengeSent(await ids.send_mqtt_challenge(call.path("device_id"), force=True))


@routes.get("/api/v1/devices/{device_id}/challenge", access=INSTALLERS, response=ChallengeOut,
            errors=(404, 409, 503), summary="Fetch a challenge for a tool to have the gateway sign (HTTP variant)")
async def get_challenge(call: Call[None, None]) -> web.Response:
    ids = call.services.identity.devices
    await ids.get(call.path("device_id"), user_id=call.user.user_id, role=call.user.role)
    signed = await ids.signed_challenge(call.path("device_id"), "http")
    return web.Response(body=signed, content_type="application/json")


@routes.post("/api/v1/devices/{device_id}/challenge-response", access=INSTALLERS, body=ChallengeAnswerIn,
             response=DeviceOut, errors=(404,), summary="Submit the gateway's signature over a challenge")
async def answer_challenge(call: Call[ChallengeAnswerIn, None]) -> DeviceOut:
    ids = call.services.identity.devices
    device_id = call.path("device_id")
    await ids.get(device_id, user_id=call.user.user_id, role=call.user.role)
    try:
        nonce, signature = bytes.fromhex(call.body.nonce), bytes.fromhex(call.body.signature)
    except ValueError:
        raise bad_request("nonce and signature must be hex") from None
    await ids.answer_challenge(device_id, nonce, signature)
    return device_out(await ids.get(device_id, user_id=call.user.user_id, role=call.user.role))


async def _status(call: Call[StatusChangeIn, None], action: str) -> DeviceOut:
    device = await call.services.identity.devices.set_status(call.path("device_id"), action, call.user.user_id,
                                                         call.body.reason)
    return device_out(device)


@routes.post("/api/v1/devices/{device_id}/suspend", access=ADMINS, body=StatusChangeIn, response=DeviceOut,
             errors=(404, 409), summary="Suspend a gateway (its readings are rejected as device_not_verified)")
async def suspend_device(call: Call[StatusChangeIn, None]) -> DeviceOut:
    return await _status(call, "suspend")


@routes.post("/api/v1/devices/{device_id}/reinstate", access=ADMINS, body=StatusChangeIn, response=DeviceOut,
             errors=(404, 409), summary="Lift a suspension")
async def reinstate_device(call: Call[StatusChangeIn, None]) -> DeviceOut:
    return await _status(call, "reinstate")


@routes.post("/api/v1/devices/{device_id}/revoke", access=ADMINS, body=StatusChangeIn, response=DeviceOut,
             errors=(404, 409, 503), summary="Revoke a gateway for good (its broker access too: it is disconnected)")
async def revoke_device(call: Call[StatusChangeIn, None]) -> DeviceOut:
    return await _status(call, "revoke")

