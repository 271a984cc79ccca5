"""The gateway rules on the in-memory store (no PostgreSQL, no broker): registration checks and limits, stale
take-over, the MQTT challenge cool-down, challenge answers, status changes. The same service runs on PostgreSQL and
MQTT in test_devices.py and test_signed.py."""

from __future__ import annotations

from uuid import uuid4

import pytest

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
    NoSigningKeyError,
    NotSuspendedError,
    SerialTakenError,
    UnknownActionError,
)
from central.identity.gateways import DeviceService, next_status
from central.identity.memory import MemoryDeviceStore
from central.identity.model import NewMeter
from protocol import topics
from protocol.challenge import sign_challenge
from protocol.keys import DeviceKey
from protocol.signed import pairing_code, unseal_challenge
from tests.central.clock import Clock

CENTRAL = DeviceKey.generate()


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, payload))


class World:
    def __init__(self, **config: int) -> None:
        self.clock = Clock()
        self.store = MemoryDeviceStore(self.clock)
        self.broker = Broker()
        self.service = DeviceService(self.store, IdentityConfig(**config), self.broker,  # type: ignore[arg-type]
                                     CENTRAL, self.clock)
        self.installer = uuid4()

    async def register(self, key: DeviceKey, *serials: str) -> None:
        meters = [NewMeter(s, "SDM630", "modbus-tcp", "solar", f"key-of-{s}") for s in serials]
        await self.service.register(key.device_id, "roof", meters, self.installer, pairing_code(key.seed))


@pytest.fixture
def world() -> World:
    return World()


async def test_registration_checks(world: World) -> None:
    key = DeviceKey.generate()
    code = pairing_code(key.seed)
    with pytest.raises(InvalidDeviceIdError):
        await world.service.register("not-a-key", "", [], world.installer, code)
    with pytest.raises(InvalidPairingCodeError):
        await world.service.register(key.device_id, "", [], world.installer, "!!")
    with pytest.raises(DuplicateSerialError):
        await world.register(key, "S-1", "S-1")
    await world.register(key, "S-1")
    with pytest.raises(DeviceExistsError):
        await world.register(key)
    with pytest.raises(SerialTakenError):
        await world.register(DeviceKey.generate(), "S-1")
    device = await world.service.get(key.device_id, user_id=world.installer, role=Role.INSTALLER)
    assert (device.status, [m.serial for m in device.meters]) == ("pending", ["S-1"])
    with pytest.raises(DeviceNotFoundError):  # another installer does not see it; an admin does
        await world.service.get(key.device_id, user_id=uuid4(), role=Role.INSTALLER)
    assert await world.service.get(key.device_id, user_id=uuid4(), role=Role.ADMIN) == device


async def test_stale_pending_registration_is_taken_over(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key, "S-1")
    world.clock.advance(seconds=IdentityConfig().pending_registration_ttl_s + 1)
    other = uuid4()
    await world.service.register(key.device_id, "new site", [], other, pairing_code(key.seed))
    device = await world.service.get(key.device_id, user_id=other, role=Role.INSTALLER)
    assert (device.site_label, device.meters) == ("new site", [])
    assert [e for d, e in world.store.events if d == key.device_id] == ["registered", "replaced"]
    await world.register(DeviceKey.generate(), "S-1")  # the stale registration's serial was freed with it


async def test_registration_sends_a_signed_challenge_the_device_can_answer(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key)
    [(topic, payload)] = world.broker.sent
    assert topic == topics.challenge(key.device_id)
    paired = unseal_challenge(payload, CENTRAL.public_key, key.device_id)
    wrong = sign_challenge(DeviceKey.generate(), paired.nonce, paired.expires_ms)
    with pytest.raises(BadChallengeSignatureError):
        await world.service.answer_challenge(key.device_id, paired.nonce, wrong)
    right = sign_challenge(key, paired.nonce, paired.expires_ms)
    assert await world.service.answer_challenge(key.device_id, paired.nonce, right) == "verified"
    with pytest.raises(InvalidChallengeError, match="already used"):  # single use
        await world.service.answer_challenge(key.device_id, paired.nonce, right)


async def test_expired_challenge_is_refused(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key)
    paired = unseal_challenge(world.broker.sent[0][1], CENTRAL.public_key, key.device_id)
    world.clock.advance(seconds=IdentityConfig().challenge_ttl_s + 1)
    with pytest.raises(InvalidChallengeError, match="expired"):
        await world.service.answer_challenge(key.device_id, paired.nonce,
                                             sign_challenge(key, paired.nonce, paired.expires_ms))
    assert await world.service.sweep_challenges() == 1


async def test_challenge_cool_down() -> None:
    world = World(challenge_cooldown_s=60)
    key = DeviceKey.generate()
    await world.register(key)  # forced: does not start the cool-down
    assert await world.service.challenge_if_pending(key.device_id)  # comes online: re-published at once
    sent = [p for _, p in world.broker.sent]
    first, again = (unseal_challenge(p, CENTRAL.public_key, key.device_id) for p in sent)
    assert first.nonce == again.nonce, "the outstanding challenge is re-published, not replaced"
    for _ in range(10):  # a flood of online statuses within the cool-down sends nothing
        assert not await world.service.challenge_if_pending(key.device_id)
    assert await world.service.send_mqtt_challenge(key.device_id, force=True)  # an installer's request
    world.clock.advance(seconds=61)
    assert await world.service.challenge_if_pending(key.device_id)
    assert len(world.broker.sent) == 4


async def test_a_pending_device_that_went_offline_is_challenged_again_as_soon_as_it_is_back() -> None:
    world = World(challenge_cooldown_s=3600)
    key = DeviceKey.generate()
    await world.register(key)
    assert await world.service.challenge_if_pending(key.device_id)  # online: the cool-down starts
    assert not await world.service.challenge_if_pending(key.device_id)
    # the session drops with the challenge in it (issue 12): the will's offline status, then online again
    assert await world.service.session_ended(key.device_id)
    assert await world.service.challenge_if_pending(key.device_id), "not an hour later"
    assert not await world.service.challenge_if_pending(key.device_id), "the cool-down runs again"
    sent = [unseal_challenge(p, CENTRAL.public_key, key.device_id) for _, p in world.broker.sent]
    assert len(sent) == 3
    assert {c.nonce for c in sent} == {sent[0].nonce}, "the outstanding challenge, re-published"
    assert not await world.service.session_ended(DeviceKey.generate().device_id)  # unknown device
    await world.service.answer_challenge(key.device_id, sent[0].nonce,
                                         sign_challenge(key, sent[0].nonce, sent[0].expires_ms))
    assert not await world.service.session_ended(key.device_id), "verified: no challenge to send again"
    other = DeviceKey.generate()
    await world.register(other)  # forced: no cool-down running
    assert not await world.service.session_ended(other.device_id)


async def test_sweeper_rechallenges_online_pending_devices_once_their_challenge_lapsed(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key)
    world.store.set_online(key.device_id)
    assert await world.service.rechallenge_online_pending() == 0  # its challenge is still outstanding
    world.clock.advance(seconds=IdentityConfig().challenge_ttl_s + 1)
    assert await world.service.rechallenge_online_pending() == 1
    fresh = unseal_challenge(world.broker.sent[-1][1], CENTRAL.public_key, key.device_id)
    first = unseal_challenge(world.broker.sent[0][1], CENTRAL.public_key, key.device_id)
    assert fresh.nonce != first.nonce
    assert [c.nonce for c in world.store.challenges if not c.used] == [fresh.nonce]


async def test_no_signing_key_and_no_broker() -> None:
    clock = Clock()
    no_key = DeviceService(MemoryDeviceStore(clock), IdentityConfig(), Broker(), None, clock)
    key = DeviceKey.generate()
    with pytest.raises(NoSigningKeyError):
        await no_key.signed_challenge(key.device_id, "http")
    no_broker = DeviceService(MemoryDeviceStore(clock), IdentityConfig(), None, CENTRAL, clock)
    await no_broker.register(key.device_id, "", [], uuid4(), pairing_code(key.seed))
    assert not await no_broker.send_mqtt_challenge(key.device_id, force=True)


def test_status_transitions() -> None:
    assert next_status("verified", "suspend", True) == "suspended"
    assert next_status("suspended", "reinstate", True) == "verified"
    assert next_status("suspended", "reinstate", False) == "pending"
    assert next_status("pending", "revoke", False) == "revoked"
    with pytest.raises(NotSuspendedError):
        next_status("verified", "reinstate", True)
    with pytest.raises(DeviceRevokedError):
        next_status("revoked", "reinstate", True)
    with pytest.raises(UnknownActionError):
        next_status("verified", "explode", True)


async def test_revoked_is_final(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key, "S-1")
    admin = uuid4()
    assert (await world.service.set_status(key.device_id, "revoke", admin, "stolen")).status == "revoked"
    with pytest.raises(DeviceRevokedError):
        await world.service.set_status(key.device_id, "reinstate", admin, "")
    with pytest.raises(DeviceRevokedError):
        await world.service.new_challenge(key.device_id, "http")
    with pytest.raises(DeviceRevokedError):
        await world.service.add_meters(key.device_id, [], user_id=world.installer, role=Role.INSTALLER)
    assert not await world.service.send_mqtt_challenge(key.device_id, force=True)
    with pytest.raises(DeviceNotFoundError):
        await world.service.set_status("nobody", "suspend", admin, "")
