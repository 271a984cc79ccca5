"""Helpers for central core tests (their fixtures are in ``conftest.py``): a running central app with helpers to make
logged-in users, and a gateway stand-in that answers central's challenges."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import paho.mqtt.client as paho
from aiohttp import web
from aiohttp.test_utils import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from central.http.context import SERVICES
from central.http.roles import Role
from protocol import topics
from protocol.challenge import ChallengeReply, sign_challenge
from protocol.errors import ProtocolError
from protocol.keys import DeviceKey
from protocol.signed import pairing_code
from protocol.status import DeviceStatus
from tests.central.device import central_challenge


class Api:
    """A running central app (identity subsystem) with a test client and helpers to make logged-in users."""

    def __init__(self, app: web.Application, client: TestClient[web.Request, web.Application]) -> None:
        self.app = app
        self.client = client
        self._n = 0

    async def user(self, role: str, *, password: str = "correct horse battery") -> tuple[str, str]:
        """Create a verified user with ``role``; returns (email, access token)."""
        self._n += 1
        email = f"{role}{self._n}-{secrets.token_hex(3)}@example.org"
        await self.app[SERVICES].identity.accounts.create_user(email, password, Role(role), verified=True)
        r = await self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status == 200, await r.text()
        return email, (await r.json())["access_token"]

    async def token(self, role: str) -> str:
        return (await self.user(role))[1]

    async def mailed(self) -> None:
        """Wait until the reset and verification requests made so far have been mailed (they are sent after the
        request is answered)."""
        await self.app[SERVICES].identity.accounts.settled()


class TestDevice:
    """A gateway stand-in built on the protocol library: connects to the broker, answers challenges on
    ``gtx/v1/d/{id}/challenge`` with ``protocol.challenge.sign_challenge`` (after checking central's signature and
    pairing MAC) and can announce itself online."""

    __test__ = False

    def __init__(self, broker: Any, key: Any = None) -> None:
        self.key = key or DeviceKey.generate()
        self.answered: list[bytes] = []
        self.ignored = 0
        self._broker = broker
        self._client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                   client_id=f"test-dev-{secrets.token_hex(4)}", protocol=paho.MQTTv5)
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_a: self._subscribed.set()

    @property
    def device_id(self) -> str:
        return str(self.key.device_id)

    def start(self) -> None:
        self._client.connect(self._broker.host, self._broker.port)
        self._client.loop_start()
        self._client.subscribe(topics.challenge(self.device_id), qos=1)
        assert self._subscribed.wait(5)

    def announce_online(self) -> None:
        self._client.publish(topics.status(self.device_id), DeviceStatus(online=True).to_json(), qos=1, retain=True)

    @property
    def pairing_code(self) -> str:
        return pairing_code(self.key.seed)

    def _on_message(self, client: Any, _u: Any, msg: Any) -> None:
        try:  # like a v1.1 gateway: only challenges central signed with this device's pairing code
            challenge = central_challenge(bytes(msg.payload), self.key.seed)
        except ProtocolError:
            self.ignored += 1
            return
        sig = sign_challenge(self.key, challenge.nonce, challenge.expires_ms)
        self.answered.append(challenge.nonce)
        client.publish(topics.challenge_reply(self.device_id), ChallengeReply(challenge.nonce, sig).to_json(), qos=1)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
