"""Gateways (devices) and their meters: registration by installers, key-possession challenges (protocol §3 Challenge,
over MQTT or HTTP), and admin status changes (suspend, reinstate, revoke).

A device is ``pending`` until it signs a fresh challenge: 32 random bytes, single use (consumed by the first right
answer; a wrong answer leaves it usable, so nobody can spend a gateway's nonce with garbage), expiring after
``identity.challenge_ttl_s`` (5 minutes). Only then is it ``verified``. Suspended and revoked devices stay so whatever
they sign; revoked is final.

Protocol v1.1 (issue 10 D2): registration needs the gateway's pairing code (shown only on its status page and QR
code); every challenge is signed with central's key and carries an HMAC keyed with that code, and a gateway signs only
such challenges. Issue 10 D10: a pending device has at most one outstanding MQTT challenge; ``online`` statuses and the
sweeper re-publish it (or issue a new one once it lapsed) no more often than ``identity.challenge_cooldown_s``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from central.config import IdentityConfig
from central.http.roles import Role
from central.identity.errors import (
    BadChallengeSignatureError,
    DeviceExistsError,
    DeviceNotFoundError,
    DeviceRevokedError,
    DuplicateSerialError,
    InvalidChallengeError,
    InvalidDeviceIdError,
    InvalidPairingCodeError,
    NoPairingCodeError,
    NoSigningKeyError,
    NotSuspendedError,
    SerialTakenError,
    UnknownActionError,
)
from central.identity.hashing import METER_KEY_COST, hash_secret
from central.mqtt import Mqtt, MqttError
from protocol import topics
from protocol.challenge import NONCE_SIZE, Challenge, verify_challenge
from protocol.errors import BadSignatureError, MalformedError
from protocol.keys import DeviceKey, public_key_from_device_id
from protocol.signed import PairedChallenge, normalize_pairing_code, seal_challenge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewMeter:
    serial: str
    model: str
    protocol: str
    source: str | None
    meter_key: str

    def __repr__(self) -> str:  # never show the meter key
        return f"NewMeter(serial={self.serial!r}, model={self.model!r})"


@dataclass(frozen=True)
class MeterInfo:
    serial: str
    model: str
    protocol: str
    source: str | None
    claimed: bool


@dataclass(frozen=True)
class Device:
    device_id: str
    status: str
    site_label: str
    installer_id: UUID | None
    created_at: datetime
    verified_at: datetime | None
    online: bool
    last_seen_at: datetime | None
    meters: list[MeterInfo]


def _seal(signer: DeviceKey, device_id: str, challenge: Challenge, code: str) -> bytes:
    """The challenge as a v1.1 gateway accepts it: with the pairing MAC, in an envelope signed by central."""
    paired = PairedChallenge.issue(code, challenge.nonce, public_key_from_device_id(device_id), challenge.expires_ms)
    return seal_challenge(signer, device_id, paired)


class Devices:
    def __init__(self, pool: asyncpg.Pool, config: IdentityConfig, mqtt: Mqtt | None,
                 signer: DeviceKey | None = None) -> None:
        self._pool = pool
        self._config = config
        self._mqtt = mqtt
        self._signer = signer

    # --- reads ---------------------------------------------------------------------------------------------------
    async def _load(self, conn: asyncpg.Pool | asyncpg.Connection, device_ids: list[str]) -> list[Device]:
        rows = await conn.fetch("SELECT * FROM devices WHERE device_id = ANY($1) ORDER BY created_at, device_id",
                                device_ids)
        meters = await conn.fetch(
            "SELECT device_id, serial, model, protocol, source, owner_id IS NOT NULL AS claimed FROM meters"
            " WHERE device_id = ANY($1) ORDER BY serial",
            device_ids,
        )
        by_device: dict[str, list[MeterInfo]] = {}
        for m in meters:
            by_device.setdefault(m["device_id"], []).append(
                MeterInfo(m["serial"], m["model"], m["protocol"], m["source"], m["claimed"])
            )
        return [
            Device(r["device_id"], r["status"], r["site_label"], r["installer_id"], r["created_at"],
                   r["verified_at"], r["online"], r["last_seen_at"], by_device.get(r["device_id"], []))
            for r in rows
        ]

    async def get(self, device_id: str, *, user_id: UUID, role: Role) -> Device:
        """A device the caller may see (its installer, or an admin); 404 otherwise."""
        row = await self._pool.fetchrow("SELECT installer_id FROM devices WHERE device_id = $1", device_id)
        if row is None or (role is not Role.ADMIN and row["installer_id"] != user_id):
            raise DeviceNotFoundError("no such device")
        return (await self._load(self._pool, [device_id]))[0]

    async def list_devices(self, *, user_id: UUID, role: Role, limit: int, after: str | None) -> list[Device]:
        ids = await self._pool.fetch(
            "SELECT device_id FROM devices WHERE ($1::uuid IS NULL OR installer_id = $1)"
            " AND ($2::text IS NULL OR device_id > $2) ORDER BY device_id LIMIT $3",
            None if role is Role.ADMIN else user_id, after, limit,
        )
        return await self._load(self._pool, [r["device_id"] for r in ids])

    # --- registration --------------------------------------------------------------------------------------------
    async def register(self, device_id: str, site_label: str, meters: list[NewMeter], installer_id: UUID,
                       pairing_code: str) -> Device:
        try:
            public_key = public_key_from_device_id(device_id)
        except MalformedError:
            raise InvalidDeviceIdError("device_id must be the base58 Ed25519 public key of the gateway") from None
        try:
            code = normalize_pairing_code(pairing_code)
        except MalformedError:
            raise InvalidPairingCodeError(
                "pairing_code must be the 8-character code shown on the gateway's status page") from None
        self._check_serials(meters)
        hashes = await asyncio.gather(*(hash_secret(m.meter_key, METER_KEY_COST) for m in meters))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if await self._take_over_stale(conn, device_id, site_label, installer_id, code):
                    event = "replaced"
                else:
                    await conn.execute(
                        "INSERT INTO devices (device_id, public_key, installer_id, site_label, pairing_code)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        device_id, public_key, installer_id, site_label, code,
                    )
                    event = "registered"
                await self._insert_meters(conn, device_id, meters, hashes, self._config.pending_registration_ttl_s)
                await conn.execute(
                    "INSERT INTO device_events (device_id, actor_id, event) VALUES ($1, $2, $3)",
                    device_id, installer_id, event,
                )
        except asyncpg.ForeignKeyViolationError:  # a stale registration's meter is referenced (never expected)
            raise DeviceExistsError("this device is already registered") from None
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "devices_pkey":
                raise DeviceExistsError("this device is already registered") from None
            raise SerialTakenError("a meter with this serial is already registered") from None
        log.info("device registered", extra={"device_id": device_id, "meters": len(meters)})
        try:
            await self.send_mqtt_challenge(device_id, force=True)
        except MqttError as exc:  # registration stands; the device is challenged again when it comes online
            log.warning("challenge not sent", extra={"device_id": device_id, "error": str(exc)})
        return (await self._load(self._pool, [device_id]))[0]

    @staticmethod
    def _check_serials(meters: list[NewMeter]) -> None:
        serials = [m.serial for m in meters]
        if len(set(serials)) != len(serials):
            raise DuplicateSerialError("meter serials must be unique")

    async def _take_over_stale(self, conn: asyncpg.Connection, device_id: str, site_label: str,
                               installer_id: UUID, code: str) -> bool:
        """Hand a stale registration (``pending``, never verified, older than ``pending_registration_ttl_s``) to
        the new registrant: its meters and open challenges go, the device row is reset. False if there is none."""
        old_installer = await conn.fetchrow(
            "SELECT installer_id FROM devices WHERE device_id = $1 AND status = 'pending' AND verified_at IS NULL"
            " AND created_at < now() - make_interval(secs => $2) FOR UPDATE",
            device_id, float(self._config.pending_registration_ttl_s),
        )
        if old_installer is None:
            return False
        await conn.execute("DELETE FROM device_challenges WHERE device_id = $1", device_id)
        await conn.execute("DELETE FROM meters WHERE device_id = $1", device_id)
        await conn.execute(
            "UPDATE devices SET installer_id = $2, site_label = $3, created_at = now(), pairing_code = $4,"
            " last_challenge_at = NULL WHERE device_id = $1",
            device_id, installer_id, site_label, code,
        )
        log.warning("stale pending registration taken over",
                    extra={"device_id": device_id, "previous_installer": str(old_installer["installer_id"])})
        return True

    @staticmethod
    async def _insert_meters(conn: asyncpg.Connection, device_id: str, meters: list[NewMeter],
                             hashes: list[str], stale_after_s: int) -> None:
        # Serials held by another stale, never-verified registration are freed (that device never sent a reading).
        await conn.execute(
            "DELETE FROM meters m USING devices d WHERE m.serial = ANY($1) AND d.device_id = m.device_id"
            " AND d.device_id <> $2 AND d.status = 'pending' AND d.verified_at IS NULL"
            " AND d.created_at < now() - make_interval(secs => $3)",
            [m.serial for m in meters], device_id, float(stale_after_s),
        )
        await conn.executemany(
            "INSERT INTO meters (id, serial, device_id, model, protocol, source, meter_key_hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [(uuid.uuid4(), m.serial, device_id, m.model, m.protocol, m.source, h) for m, h in zip(meters, hashes,
                                                                                                  strict=True)],
        )

    async def add_meters(self, device_id: str, meters: list[NewMeter], *, user_id: UUID, role: Role) -> Device:
        device = await self.get(device_id, user_id=user_id, role=role)
        if device.status == "revoked":
            raise DeviceRevokedError("the device is revoked")
        self._check_serials(meters)
        hashes = await asyncio.gather(*(hash_secret(m.meter_key, METER_KEY_COST) for m in meters))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._insert_meters(conn, device_id, meters, hashes, self._config.pending_registration_ttl_s)
        except asyncpg.UniqueViolationError:
            raise SerialTakenError("a meter with this serial is already registered") from None
        return (await self._load(self._pool, [device_id]))[0]

    # --- challenges ----------------------------------------------------------------------------------------------
    async def new_challenge(self, device_id: str, channel: str) -> Challenge:
        nonce = os.urandom(NONCE_SIZE)
        expires_ms = int(time.time() * 1000) + self._config.challenge_ttl_s * 1000
        row = await self._pool.fetchrow(
            "INSERT INTO device_challenges (nonce, device_id, channel, expires_ms, expires_at)"
            " SELECT $1, device_id, $3, $4::bigint, to_timestamp($4::bigint / 1000.0) FROM devices"
            " WHERE device_id = $2 AND status <> 'revoked' RETURNING nonce",
            nonce, device_id, channel, expires_ms,
        )
        if row is None:
            raise DeviceRevokedError("the device is revoked")
        return Challenge(nonce, expires_ms)

    async def signed_challenge(self, device_id: str, channel: str) -> bytes:
        """A fresh challenge as the gateway accepts it (protocol §10): signed by central, with the pairing MAC.
        409 ``no_pairing_code`` for a device registered without one, 503 when central has no signing key."""
        signer = self._require_signer()
        code = await self._pool.fetchval("SELECT pairing_code FROM devices WHERE device_id = $1", device_id)
        if code is None:
            raise NoPairingCodeError("the device was registered without a pairing code; register it again")
        challenge = await self.new_challenge(device_id, channel)
        return _seal(signer, device_id, challenge, code)

    def _require_signer(self) -> DeviceKey:
        if self._signer is None:
            raise NoSigningKeyError("central has no signing key (mqtt.signing_key_file)")
        return self._signer

    async def send_mqtt_challenge(self, device_id: str, *, force: bool = False) -> bool:
        """Publish the device's outstanding MQTT challenge, or a fresh one if none is outstanding (QoS 1). Unless
        ``force`` (registration, an installer's request), nothing is sent within ``identity.challenge_cooldown_s``
        of the previous unforced send. False when nothing was sent (MQTT disabled, cool-down, not challengeable)."""
        if self._mqtt is None:
            return False
        signer = self._require_signer()
        now_ms = int(time.time() * 1000)
        async with self._pool.acquire() as conn, conn.transaction():
            # Claiming last_challenge_at under the row lock serialises concurrent triggers (a flood of statuses).
            # A forced send does not start the cool-down: a gateway that comes online right after its registration
            # (and missed that challenge) still gets it re-published at once.
            code = await conn.fetchval(
                "UPDATE devices SET last_challenge_at = CASE WHEN $2 THEN last_challenge_at ELSE now() END"
                " WHERE device_id = $1 AND status <> 'revoked' AND pairing_code IS NOT NULL AND ($2"
                " OR last_challenge_at IS NULL OR last_challenge_at <= now() - make_interval(secs => $3))"
                " RETURNING pairing_code",
                device_id, force, float(self._config.challenge_cooldown_s),
            )
            if code is None:
                return False
            row = await conn.fetchrow(
                "SELECT nonce, expires_ms FROM device_challenges WHERE device_id = $1 AND channel = 'mqtt'"
                " AND used_at IS NULL AND expires_ms > $2 ORDER BY expires_ms DESC LIMIT 1",
                device_id, now_ms + 5_000,
            )
            if row is not None:
                challenge = Challenge(bytes(row["nonce"]), row["expires_ms"])
            else:
                await conn.execute(
                    "DELETE FROM device_challenges WHERE device_id = $1 AND channel = 'mqtt' AND used_at IS NULL",
                    device_id,
                )
                nonce = os.urandom(NONCE_SIZE)
                expires_ms = now_ms + self._config.challenge_ttl_s * 1000
                await conn.execute(
                    "INSERT INTO device_challenges (nonce, device_id, channel, expires_ms, expires_at)"
                    " VALUES ($1, $2, 'mqtt', $3::bigint, to_timestamp($3::bigint / 1000.0))",
                    nonce, device_id, expires_ms,
                )
                challenge = Challenge(nonce, expires_ms)
        payload = _seal(signer, device_id, challenge, code)
        await self._mqtt.publish(topics.challenge(device_id), payload, qos=1)
        log.info("challenge sent", extra={"device_id": device_id, "channel": "mqtt"})
        return True

    async def answer_challenge(self, device_id: str, nonce: bytes, signature: bytes) -> str:
        """Check a challenge answer; returns the device's status afterwards. Raises 400 ``invalid_challenge`` for
        an unknown, used or expired nonce and 400 ``bad_signature`` for a wrong signature. Only a right answer uses
        the nonce up: a wrong one (anybody on the broker can send one) leaves it for the real gateway."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT c.expires_ms, d.public_key FROM device_challenges c JOIN devices d USING (device_id)"
                " WHERE c.nonce = $1 AND c.device_id = $2 AND c.used_at IS NULL",
                nonce, device_id,
            )
            if row is None:
                raise InvalidChallengeError("unknown or already used challenge")
            if row["expires_ms"] < int(time.time() * 1000):
                raise InvalidChallengeError("the challenge has expired")
            try:
                verify_challenge(bytes(row["public_key"]), nonce, row["expires_ms"], signature)
            except (BadSignatureError, MalformedError):
                log.warning("challenge signature rejected", extra={"device_id": device_id})
                raise BadChallengeSignatureError("the signature does not verify under the device key") from None
            async with conn.transaction():
                used = await conn.fetchrow(
                    "UPDATE device_challenges c SET used_at = now() FROM devices d"
                    " WHERE c.nonce = $1 AND c.device_id = $2 AND d.device_id = c.device_id AND c.used_at IS NULL"
                    " RETURNING d.status",
                    nonce, device_id,
                )
            if used is None:  # a concurrent right answer used it first
                raise InvalidChallengeError("unknown or already used challenge")
            if used["status"] != "pending":
                return str(used["status"])
            async with conn.transaction():
                status = await conn.fetchval(
                    "UPDATE devices SET status = 'verified', verified_at = now() WHERE device_id = $1"
                    " AND status = 'pending' RETURNING status",
                    device_id,
                )
                if status is not None:
                    await conn.execute(
                        "INSERT INTO device_events (device_id, event) VALUES ($1, 'verified')", device_id
                    )
        log.info("device verified", extra={"device_id": device_id})
        return "verified"

    async def challenge_if_pending(self, device_id: str) -> bool:
        """Send a fresh MQTT challenge to a pending device that just came online (it may have missed earlier
        ones: devices connect with a clean start)."""
        due = await self._pool.fetchval("SELECT status = 'pending' FROM devices WHERE device_id = $1", device_id)
        if not due:
            return False
        return await self.send_mqtt_challenge(device_id)  # at most once per cool-down, whatever the status flood

    async def rechallenge_online_pending(self) -> int:
        """Challenge pending devices marked online whose previous challenge has lapsed; returns how many."""
        rows = await self._pool.fetch(
            "SELECT d.device_id FROM devices d WHERE d.status = 'pending' AND d.online AND d.pairing_code IS NOT NULL"
            " AND NOT EXISTS"
            " (SELECT 1 FROM device_challenges c WHERE c.device_id = d.device_id AND c.channel = 'mqtt'"
            " AND c.used_at IS NULL AND c.expires_ms > $1) LIMIT 1000",
            int(time.time() * 1000) + 5_000,
        )
        sent = 0
        for r in rows:
            sent += await self.send_mqtt_challenge(r["device_id"])
        return sent

    async def sweep_challenges(self) -> int:
        """Delete expired challenges (used or not); returns how many."""
        result: str = await self._pool.execute(
            "DELETE FROM device_challenges WHERE expires_ms < $1", int(time.time() * 1000)
        )
        return int(result.rsplit(maxsplit=1)[-1])

    # --- status changes ------------------------------------------------------------------------------------------
    async def set_status(self, device_id: str, action: str, actor_id: UUID, reason: str) -> Device:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT status, verified_at FROM devices WHERE device_id = $1 FOR UPDATE",
                                      device_id)
            if row is None:
                raise DeviceNotFoundError("no such device")
            current = row["status"]
            if current == "revoked":
                raise DeviceRevokedError("the device is revoked; that is final")
            if action == "suspend":
                new = "suspended"
            elif action == "revoke":
                new = "revoked"
            elif action == "reinstate":
                if current != "suspended":
                    raise NotSuspendedError("only a suspended device can be reinstated")
                new = "verified" if row["verified_at"] is not None else "pending"
            else:
                raise UnknownActionError(f"unknown action {action}")
            await conn.execute("UPDATE devices SET status = $2 WHERE device_id = $1", device_id, new)
            await conn.execute(
                "INSERT INTO device_events (device_id, actor_id, event, detail) VALUES ($1, $2, $3, $4)",
                device_id, actor_id, action, reason,
            )
        log.info("device status changed", extra={"device_id": device_id, "action": action, "status": new})
        return (await self._load(self._pool, [device_id]))[0]
