"""Gateways' broker access as the gateway rules drive it (in-memory store, the broker-access fake): registration
grants the credential the gateway derives itself, revocation removes it before it is recorded, a grant the broker did
not take leaves the registration standing and is repaired later. The real plugin: tests/central/broker/."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from central.broker.errors import BrokerTimeoutError
from central.broker.memory import InMemoryBrokerAccess
from central.config import IdentityConfig
from central.identity.gateways import DeviceService
from central.identity.memory import MemoryDeviceStore
from protocol.broker import broker_password
from protocol.keys import DeviceKey
from protocol.signed import format_pairing_code, pairing_code
from tests.central.clock import Clock

CENTRAL = DeviceKey.generate()


class Publisher:
    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Challenges go nowhere here."""


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryDeviceStore(self.clock)
        self.access = InMemoryBrokerAccess()
        self.service = DeviceService(self.store, IdentityConfig(), Publisher(), CENTRAL, self.clock,
                                     broker=self.access)
        self.admin = uuid4()

    async def register(self, key: DeviceKey, code: str | None = None) -> None:
        await self.service.register(key.device_id, "roof", [], uuid4(), code or pairing_code(key.seed))


@pytest.fixture
def world() -> World:
    return World()


def _gateway_password(key: DeviceKey) -> str:
    """What the gateway computes from its own key (edge.credential)."""
    return broker_password(pairing_code(key.seed), key.device_id)


async def test_registration_grants_the_password_the_gateway_derives(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key, format_pairing_code(pairing_code(key.seed)).lower())  # as typed
    assert world.access.clients == {key.device_id: _gateway_password(key)}


async def test_revocation_removes_access_and_a_failed_one_is_not_recorded(world: World) -> None:
    key, other = DeviceKey.generate(), DeviceKey.generate()
    await world.register(key)
    await world.register(other)
    world.access.down = True
    with pytest.raises(BrokerTimeoutError):
        await world.service.set_status(key.device_id, "revoke", world.admin, "stolen")
    assert await world.store.status(key.device_id) == "pending"  # nothing recorded: the admin tries again
    world.access.down = False
    device = await world.service.set_status(key.device_id, "revoke", world.admin, "stolen")
    assert device.status == "revoked"
    assert world.access.revoked == [key.device_id]
    assert list(world.access.clients) == [other.device_id]
    # a revoked gateway is never granted again, not even by an installer's repair
    assert not await world.service.grant_broker_access(key.device_id, replace=False)
    assert key.device_id not in world.access.clients


async def test_suspension_keeps_broker_access(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key)
    await world.service.set_status(key.device_id, "suspend", world.admin, "audit")
    assert key.device_id in world.access.clients
    assert world.access.revoked == []


async def test_a_grant_the_broker_did_not_take_is_repaired_by_a_later_request(world: World) -> None:
    key = DeviceKey.generate()
    world.access.down = True
    await world.register(key)  # the registration stands
    assert await world.store.status(key.device_id) == "pending"
    assert world.access.clients == {}
    world.access.down = False
    assert await world.service.grant_broker_access(key.device_id, replace=False)
    assert world.access.clients == {key.device_id: _gateway_password(key)}


async def test_a_new_registration_replaces_the_password_a_repair_does_not(world: World) -> None:
    key = DeviceKey.generate()
    await world.register(key, "ABCD-EFGH")  # a wrong code, e.g. typed by someone not at the gateway
    squatted = world.access.clients[key.device_id]
    assert squatted == broker_password("ABCDEFGH", key.device_id) != _gateway_password(key)
    world.clock.advance(seconds=IdentityConfig().pending_registration_ttl_s + 1)
    await world.register(key)  # taken over with the gateway's own code
    assert world.access.clients[key.device_id] == _gateway_password(key)


async def test_without_broker_access_nothing_is_granted() -> None:
    clock = Clock()
    service = DeviceService(MemoryDeviceStore(clock), IdentityConfig(), None, CENTRAL, clock)
    key = DeviceKey.generate()
    await service.register(key.device_id, "roof", [], uuid4(), pairing_code(key.seed))
    assert not await service.grant_broker_access(key.device_id)


async def test_sync_restores_what_the_broker_lost(world: World) -> None:
    keys = [DeviceKey.generate() for _ in range(3)]
    for key in keys:
        await world.register(key)
    await world.service.set_status(keys[2].device_id, "revoke", world.admin, "stolen")
    world.access.clients.clear()  # the broker's state was lost
    world.access.clients[keys[2].device_id] = "left behind"
    assert await world.service.sync_broker_access(page=2) == (2, 1, 0)
    assert world.access.clients == {k.device_id: _gateway_password(k) for k in keys[:2]}


class SlowGrants(InMemoryBrokerAccess):
    """A broker that takes a grant only when the test lets it (``entered`` set when one is being made)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def grant(self, device_id: str, password: str, *, replace: bool = True) -> None:
        self.entered.set()
        await self.release.wait()
        await super().grant(device_id, password, replace=replace)


async def test_a_repair_racing_a_revocation_does_not_give_the_revoked_gateway_its_access_back(world: World) -> None:
    """An installer's repair (``POST /devices/{id}/challenge``) read the status, then granted: a revocation in between
    removed the broker client and the repair, still sure the device was not revoked, made it again."""
    key = DeviceKey.generate()
    await world.register(key)
    slow = SlowGrants()
    world.service = DeviceService(world.store, IdentityConfig(), Publisher(), CENTRAL, world.clock, broker=slow)
    # ``slow`` has no client for it (as if the grant at registration had failed): the installer repairs it ...
    repair = asyncio.create_task(world.service.grant_broker_access(key.device_id, replace=False))
    await slow.entered.wait()
    revoke = asyncio.create_task(world.service.set_status(key.device_id, "revoke", world.admin, "stolen"))
    await asyncio.sleep(0)  # ... while an admin revokes the gateway
    slow.release.set()
    await asyncio.gather(repair, revoke)
    assert await world.store.status(key.device_id) == "revoked"
    assert key.device_id not in slow.clients
