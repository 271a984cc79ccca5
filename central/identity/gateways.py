"""Gateways (devices) and their meters as pure rules over a ``DeviceStore``: registration by installers,
key-possession challenges (protocol §3 Challenge, over MQTT or HTTP), and admin status changes (suspend, reinstate,
revoke).

A device is ``pending`` until it signs a fresh challenge: 32 random bytes, single use (consumed by the first right
answer; a wrong answer leaves it usable, so nobody can spend a gateway's nonce with garbage), expiring after
``identity.challenge_ttl_s`` (5 minutes). Only then is it ``verified``. Suspended and revoked devices stay so whatever
they sign; revoked is final.

Protocol v1.1 (issue 10 D2): registration needs the gateway's pairing code (shown only on its status page and QR
code); every challenge is signed with central's key and carries an HMAC keyed with that code, and a gateway signs only
such challenges. Issue 10 D10: a pending device has at most one outstanding MQTT challenge; ``online`` statuses and the
sweeper re-publish it (or issue a new one once it lapsed) no more often than ``identity.challenge_cooldown_s``, except
that the cool-down ends when the device goes offline: its next session is challenged as soon as it is online (issue
12).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from central.broker.errors import BrokerError
from central.broker.port import BrokerAccess
from central.config import IdentityConfig
from central.errors import CentralError
from central.identity.claims import utc_now
from central.identity.errors import (
    BadChallengeSignatureError,
    DeviceNotFoundError,
    DeviceRevokedError,
    DuplicateSerialError,
    IdentityError,
    InvalidChallengeError,
    InvalidDeviceIdError,
    InvalidPairingCodeError,
    NoPairingCodeError,
    NoSigningKeyError,
    NotSuspendedError,
    UnknownActionError,
)
from central.identity.hashing import METER_KEY_COST, hash_secret
from central.identity.model import ChallengeTarget, Device, NewMeter, Registration
from central.identity.port import DeviceStore
from central.roles import Role
from protocol import topics
from protocol.broker import broker_password
from protocol.challenge import NONCE_SIZE, Challenge, verify_challenge
from protocol.errors import BadSignatureError, MalformedError
from protocol.keys import DeviceKey, public_key_from_device_id
from protocol.signed import PairedChallenge, normalize_pairing_code, seal_challenge

log = logging.getLogger("central.identity.devices")
#: A challenge that expires within this margin is not re-published (the gateway could not answer in time).
_MARGIN_MS = 5_000


class Publisher(Protocol):
    """Where MQTT challenges go (``central.mqtt.Mqtt``); a failed hand-over raises a ``CentralError``."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...


def next_status(current: str, action: str, ever_verified: bool) -> str:
    """The status after an admin's ``action``: suspend and revoke apply to any device that is not revoked
    (revoked is final); reinstate lifts a suspension, back to verified, or pending if the device never was."""
    if current == "revoked":
        raise DeviceRevokedError("the device is revoked; that is final")
    if action == "suspend":
        return "suspended"
    if action == "revoke":
        return "revoked"
    if action == "reinstate":
        if current != "suspended":
            raise NotSuspendedError("only a suspended device can be reinstated")
        return "verified" if ever_verified else "pending"
    raise UnknownActionError(f"unknown action {action}")


def challenge_due(target: ChallengeTarget, cooldown: timedelta, *, force: bool) -> bool:
    """Whether an MQTT challenge may be sent: never to a revoked device or one without a pairing code; unless
    ``force``, not within ``cooldown`` of the previous unforced send."""
    if target.status == "revoked" or target.pairing_code is None:
        return False
    last = target.last_challenge_at
    return force or last is None or last <= target.now - cooldown


def _check_serials(meters: list[NewMeter]) -> None:
    serials = [m.serial for m in meters]
    if len(set(serials)) != len(serials):
        raise DuplicateSerialError("meter serials must be unique")


def _seal(signer: DeviceKey, device_id: str, challenge: Challenge, code: str) -> bytes:
    """The challenge as a v1.1 gateway accepts it: with the pairing MAC, in an envelope signed by central."""
    paired = PairedChallenge.issue(code, challenge.nonce, public_key_from_device_id(device_id), challenge.expires_ms)
    return seal_challenge(signer, device_id, paired)


class DeviceService:
    def __init__(self, store: DeviceStore, config: IdentityConfig, publisher: Publisher | None,
                 signer: DeviceKey | None = None, clock: Callable[[], datetime] = utc_now,
                 broker: BrokerAccess | None = None) -> None:
        self._store = store
        self._broker = broker
        self._config = config
        self._publisher = publisher
        self._signer = signer
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    # --- reads ---------------------------------------------------------------------------------------------------
    async def get(self, device_id: str, *, user_id: UUID, role: Role) -> Device:
        """A device the caller may see (its installer, or an admin); ``DeviceNotFoundError`` otherwise."""
        if not await self._store.visible(device_id, None if role is Role.ADMIN else user_id):
            raise DeviceNotFoundError("no such device")
        return (await self._store.load([device_id]))[0]

    async def list_devices(self, *, user_id: UUID, role: Role, limit: int, after: str | None) -> list[Device]:
        ids = await self._store.list_ids(None if role is Role.ADMIN else user_id, after, limit)
        return await self._store.load(ids)

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
        _check_serials(meters)
        hashes = await asyncio.gather(*(hash_secret(m.meter_key, METER_KEY_COST) for m in meters))
        registration = Registration(device_id, public_key, installer_id, site_label, code, meters, list(hashes))
        await self._store.register(registration, self._config.pending_registration_ttl_s)
        log.info("device registered", extra={"device_id": device_id, "meters": len(meters)})
        await self.grant_broker_access(device_id)
        try:
            await self.send_mqtt_challenge(device_id, force=True)
        except IdentityError:
            raise
        except CentralError as exc:  # registration stands; the device is challenged again when it comes online
            log.warning("challenge not sent", extra={"device_id": device_id, "error": str(exc)})
        return (await self._store.load([device_id]))[0]

    async def add_meters(self, device_id: str, meters: list[NewMeter], *, user_id: UUID, role: Role) -> Device:
        device = await self.get(device_id, user_id=user_id, role=role)
        if device.status == "revoked":
            raise DeviceRevokedError("the device is revoked")
        _check_serials(meters)
        hashes = await asyncio.gather(*(hash_secret(m.meter_key, METER_KEY_COST) for m in meters))
        await self._store.add_meters(device_id, meters, list(hashes), self._config.pending_registration_ttl_s)
        return (await self._store.load([device_id]))[0]

    # --- broker access -------------------------------------------------------------------------------------------
    async def grant_broker_access(self, device_id: str, *, replace: bool = True) -> bool:
        """Give a registered, not revoked gateway its broker client: anew (``replace``: at registration, which may
        be a new pairing code), or only if it has none (an installer's challenge request repairs a grant that
        failed). False when there is no broker access to manage, the device has no pairing code or is revoked, or
        the broker did not take it (logged)."""
        if self._broker is None:
            return False
        code = await self._store.pairing_code(device_id)
        if code is None:
            return False
        password = await asyncio.to_thread(broker_password, code, device_id)
        # The device's row stays locked from the status check to the grant, as ``set_status`` holds it from the
        # revocation at the broker to the recorded status: a revocation in between would otherwise be undone.
        async with self._store.changing_status(device_id) as tx:
            current = await tx.current()
            if current is None or current[0] == "revoked":
                return False
            try:
                await self._broker.grant(device_id, password, replace=replace)
            except BrokerError as exc:
                log.warning("broker access not granted", extra={"device_id": device_id, "error": str(exc)})
                return False
        return True

    async def sync_broker_access(self, page: int = 500) -> tuple[int, int, int]:
        """Make the broker agree with the registry after its state was lost or changed behind central's back: every
        registered, not revoked gateway gets its client if it has none (existing ones are left alone), every revoked
        one loses it. Returns (granted or kept, revoked, not granted: no pairing code or the broker refused)."""
        if self._broker is None:
            return 0, 0, 0
        granted = revoked = missed = 0
        after: str | None = None
        while ids := await self._store.list_ids(None, after, page):
            after = ids[-1]
            for device_id in ids:
                if await self._store.status(device_id) == "revoked":
                    await self._broker.revoke(device_id)
                    revoked += 1
                elif await self.grant_broker_access(device_id, replace=False):
                    granted += 1
                else:
                    missed += 1
        return granted, revoked, missed

    # --- challenges ----------------------------------------------------------------------------------------------
    def _fresh_challenge(self) -> Challenge:
        return Challenge(os.urandom(NONCE_SIZE), self._now_ms() + self._config.challenge_ttl_s * 1000)

    async def new_challenge(self, device_id: str, channel: str) -> Challenge:
        challenge = self._fresh_challenge()
        if not await self._store.add_challenge(device_id, channel, challenge):
            raise DeviceRevokedError("the device is revoked")
        return challenge

    async def signed_challenge(self, device_id: str, channel: str) -> bytes:
        """A fresh challenge as the gateway accepts it (protocol §10): signed by central, with the pairing MAC.
        ``NoPairingCodeError`` for a device registered without one, ``NoSigningKeyError`` when central has no
        signing key."""
        signer = self._require_signer()
        code = await self._store.pairing_code(device_id)
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
        if self._publisher is None:
            return False
        signer = self._require_signer()
        cooldown = timedelta(seconds=self._config.challenge_cooldown_s)
        async with self._store.challenging(device_id) as tx:
            target = await tx.target()
            if target is None or not challenge_due(target, cooldown, force=force):
                return False
            assert target.pairing_code is not None
            # A forced send does not start the cool-down: a gateway that comes online right after its registration
            # (and missed that challenge) still gets it re-published at once.
            if not force:
                await tx.start_cooldown()
            challenge = await tx.outstanding(self._now_ms() + _MARGIN_MS)
            if challenge is None:
                challenge = self._fresh_challenge()
                await tx.replace_outstanding(challenge)
        payload = _seal(signer, device_id, challenge, target.pairing_code)
        await self._publisher.publish(topics.challenge(device_id), payload, qos=1)
        log.info("challenge sent", extra={"device_id": device_id, "channel": "mqtt"})
        return True

    async def answer_challenge(self, device_id: str, nonce: bytes, signature: bytes) -> str:
        """Check a challenge answer; returns the device's status afterwards. Raises ``InvalidChallengeError`` for
        an unknown, used or expired nonce and ``BadChallengeSignatureError`` for a wrong signature. Only a right
        answer uses the nonce up: a wrong one (anybody on the broker can send one) leaves it for the real gateway."""
        open_challenge = await self._store.open_challenge(device_id, nonce)
        if open_challenge is None:
            raise InvalidChallengeError("unknown or already used challenge")
        if open_challenge.expires_ms < self._now_ms():
            raise InvalidChallengeError("the challenge has expired")
        try:
            verify_challenge(open_challenge.public_key, nonce, open_challenge.expires_ms, signature)
        except (BadSignatureError, MalformedError):
            log.warning("challenge signature rejected", extra={"device_id": device_id})
            raise BadChallengeSignatureError("the signature does not verify under the device key") from None
        status = await self._store.use_challenge(device_id, nonce)
        if status is None:  # a concurrent right answer used it first
            raise InvalidChallengeError("unknown or already used challenge")
        if status != "pending":
            return status
        await self._store.mark_verified(device_id)
        log.info("device verified", extra={"device_id": device_id})
        return "verified"

    async def challenge_if_pending(self, device_id: str) -> bool:
        """Send a fresh MQTT challenge to a pending device that just came online (it may have missed earlier
        ones: devices connect with a clean start)."""
        if await self._store.status(device_id) != "pending":
            return False
        return await self.send_mqtt_challenge(device_id)  # at most once per cool-down, whatever the status flood

    async def session_ended(self, device_id: str) -> bool:
        """A pending device went offline (its ``offline`` status: a clean stop or the broker's last will). The
        challenge sent into that session may have gone with it, unanswered (devices connect with a clean start), so
        the cool-down ends: the ``online`` status of its next session gets the challenge at once, not up to
        ``identity.challenge_cooldown_s`` later (an installer waits for it in front of the gateway). Only the
        device's own client and the broker may publish its status, and a re-publication reuses the outstanding
        challenge, so a gateway reconnecting in a loop costs one message per session and no new challenge. False
        when nothing changed (not pending, or no cool-down running)."""
        async with self._store.challenging(device_id) as tx:
            target = await tx.target()
            if target is None or target.status != "pending" or target.last_challenge_at is None:
                return False
            await tx.end_cooldown()
        log.info("challenge cool-down ended: the pending device went offline", extra={"device_id": device_id})
        return True

    async def rechallenge_online_pending(self) -> int:
        """Challenge pending devices marked online whose previous challenge has lapsed; returns how many."""
        sent = 0
        for device_id in await self._store.pending_online_unchallenged(self._now_ms() + _MARGIN_MS, 1000):
            sent += await self.send_mqtt_challenge(device_id)
        return sent

    async def sweep_challenges(self) -> int:
        """Delete expired challenges (used or not); returns how many."""
        return await self._store.delete_expired_challenges(self._now_ms())

    # --- status changes ------------------------------------------------------------------------------------------
    async def set_status(self, device_id: str, action: str, actor_id: UUID, reason: str) -> Device:
        async with self._store.changing_status(device_id) as tx:
            current = await tx.current()
            if current is None:
                raise DeviceNotFoundError("no such device")
            new = next_status(current[0], action, current[1])
            if new == "revoked" and self._broker is not None:
                await self._broker.revoke(device_id)  # BrokerError: nothing recorded, the admin tries again
            await tx.set(new, actor_id, action, reason)
        log.info("device status changed", extra={"device_id": device_id, "action": action, "status": new})
        return (await self._store.load([device_id]))[0]
