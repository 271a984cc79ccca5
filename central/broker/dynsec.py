"""The real :class:`~central.broker.port.BrokerAccess`: Mosquitto dynamic-security commands sent through central's
own MQTT link (its client has the ``gtx-broker-admin`` role).

A command goes to ``$CONTROL/dynamic-security/v1`` as ``{"commands": [...]}``, each with a ``correlationData`` of
its own; the plugin answers every command on ``…/v1/response``, to every client subscribed there (every central
process), so each process waits only for the correlation ids it sent. ``deleteClient`` disconnects the client at
once. Passwords go to the broker only inside the TLS/private link and are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from central.broker import acl
from central.broker.errors import BrokerRefusedError, BrokerTimeoutError
from central.errors import CentralError
from central.mqtt import Mqtt, MqttMessage

log = logging.getLogger(__name__)
_NOT_FOUND = "not found"
_EXISTS = "already exists"


class DynsecAccess:
    def __init__(self, mqtt: Mqtt, *, timeout_s: float = 10.0) -> None:
        self._mqtt = mqtt
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[str]] = {}

    def subscribe(self) -> None:
        """Listen for the plugin's answers (before or after the MQTT client starts)."""
        self._mqtt.subscribe(acl.RESPONSE_TOPIC, self._on_response, qos=1)

    async def _on_response(self, msg: MqttMessage) -> None:
        try:
            responses = json.loads(msg.payload).get("responses", [])
        except (ValueError, AttributeError):
            return
        for r in responses if isinstance(responses, list) else []:
            if not isinstance(r, dict):
                continue
            fut = self._waiting.get(str(r.get("correlationData", "")))
            if fut is not None and not fut.done():
                fut.set_result(str(r.get("error") or ""))

    async def _run(self, *commands: dict[str, Any]) -> list[str]:
        """Send commands in one message (the plugin runs them in order); each one's error text ("" when it
        succeeded)."""
        names = ", ".join(c["command"] for c in commands)
        if not self._mqtt.connected:  # never queue a command for later: it would change the broker behind our back
            raise BrokerTimeoutError(f"{names} not sent: central is not connected to the broker")
        loop = asyncio.get_running_loop()
        ids = [uuid.uuid4().hex for _ in commands]
        futures = [loop.create_future() for _ in commands]
        self._waiting.update(zip(ids, futures, strict=True))
        try:
            payload = json.dumps(
                {"commands": [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]}
            ).encode()
            try:
                await self._mqtt.publish(acl.CONTROL_TOPIC, payload, qos=1)
                async with asyncio.timeout(self._timeout_s):
                    return list(await asyncio.gather(*futures))
            except TimeoutError:
                raise BrokerTimeoutError(f"the broker did not answer {names} within {self._timeout_s:g} s") from None
            except CentralError as exc:
                raise BrokerTimeoutError(f"{names} not sent: {exc}") from None
        finally:
            for i in ids:
                self._waiting.pop(i, None)

    async def grant(self, device_id: str, password: str, *, replace: bool = True) -> None:
        role_error, client_error = await self._run(acl.create_device_role(device_id),
                                                   acl.create_device(device_id, password))
        if role_error and _EXISTS not in role_error.lower():
            raise BrokerRefusedError("createRole", role_error)
        if client_error:
            if _EXISTS not in client_error.lower():
                raise BrokerRefusedError("createClient", client_error)
            if not replace:
                return
            # A new registration of the device id (a lapsed pending one taken over): the old client goes, with any
            # connection that logged in with the old password, and comes back with the new one.
            delete_error, create_error = await self._run(acl.delete_client(device_id),
                                                         acl.create_device(device_id, password))
            if delete_error and _NOT_FOUND not in delete_error.lower():
                raise BrokerRefusedError("deleteClient", delete_error)
            if create_error:
                raise BrokerRefusedError("createClient", create_error)
        log.info("broker access granted", extra={"device_id": device_id})

    async def revoke(self, device_id: str) -> None:
        for command, error in zip(("deleteClient", "deleteRole"), await self._run(
                acl.delete_client(device_id), acl.delete_device_role(device_id)), strict=True):
            if error and _NOT_FOUND not in error.lower():
                raise BrokerRefusedError(command, error)
        log.info("broker access revoked", extra={"device_id": device_id})
