"""``DynsecAccess`` against a scripted dynamic-security plugin on the in-memory MQTT fake: the commands it sends,
how it reads the plugin's answers (correlation, "already exists", "not found", refusals) and what it does when
nobody answers. The real plugin: tests/central/broker/."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from central.broker import acl
from central.broker.dynsec import DynsecAccess
from central.broker.errors import BrokerRefusedError, BrokerTimeoutError
from central.mqtt import InMemoryMqtt, MqttMessage

Answer = Callable[[dict[str, Any]], str]


class Plugin:
    """Answers every command on the control topic with ``answer(command)`` as its error text ("" = success)."""

    def __init__(self, mqtt: InMemoryMqtt, answer: Answer, *, silent: bool = False) -> None:
        self.mqtt, self.answer, self.silent = mqtt, answer, silent
        self.commands: list[dict[str, Any]] = []
        mqtt.subscribe(acl.CONTROL_TOPIC, self._on_command)

    async def _on_command(self, msg: MqttMessage) -> None:
        commands = json.loads(msg.payload)["commands"]
        self.commands.extend(commands)
        if self.silent:
            return
        responses = [{"command": c["command"], "correlationData": c["correlationData"],
                      **({"error": e} if (e := self.answer(c)) else {})} for c in commands]
        # an answer to somebody else's command is ignored
        responses.append({"command": "createClient", "correlationData": "not-ours", "error": "whatever"})
        await self.mqtt.publish(acl.RESPONSE_TOPIC, json.dumps({"responses": responses}).encode())


async def _access(answer: Answer, *, silent: bool = False) -> tuple[DynsecAccess, Plugin]:
    mqtt = InMemoryMqtt()
    access = DynsecAccess(mqtt, timeout_s=0.5)
    access.subscribe()
    plugin = Plugin(mqtt, answer, silent=silent)
    await mqtt.start()
    return access, plugin


def _names(plugin: Plugin) -> list[str]:
    return [c["command"] for c in plugin.commands]


async def test_grant_creates_the_role_and_the_client() -> None:
    access, plugin = await _access(lambda _c: "")
    await access.grant("dev1", "pw1")
    assert _names(plugin) == ["createRole", "createClient"]
    role, client = plugin.commands
    assert role["rolename"] == client["roles"][0]["rolename"] == "gtx-device:dev1"
    assert {a["topic"] for a in role["acls"]} == {f"gtx/v1/d/dev1/{k}" for k in (
        "readings", "challenge/reply", "sync", "status", "ack", "challenge", "sync/reply")}
    assert (client["username"], client["password"]) == ("dev1", "pw1")


async def test_an_existing_client_is_made_anew_unless_only_repaired() -> None:
    exists = {"createRole": "Role already exists", "createClient": "Client already exists"}
    access, plugin = await _access(lambda c: exists.get(c["command"], ""))
    await access.grant("dev1", "pw1", replace=False)
    assert _names(plugin) == ["createRole", "createClient"]
    plugin.commands.clear()
    with pytest.raises(BrokerRefusedError):  # the second createClient "already exists" too in this script
        await access.grant("dev1", "pw2")
    assert _names(plugin) == ["createRole", "createClient", "deleteClient", "createClient"]


async def test_revoke_deletes_client_and_role_and_tolerates_their_absence() -> None:
    access, plugin = await _access(lambda c: "Client not found" if c["command"] == "deleteClient" else "")
    await access.revoke("dev1")
    assert [(c["command"], c.get("username") or c.get("rolename")) for c in plugin.commands] == [
        ("deleteClient", "dev1"), ("deleteRole", "gtx-device:dev1")]


async def test_a_refusal_is_an_error() -> None:
    access, _ = await _access(lambda c: "Internal error" if c["command"] == "deleteRole" else "")
    with pytest.raises(BrokerRefusedError, match="deleteRole: Internal error"):
        await access.revoke("dev1")


async def test_no_answer_is_a_timeout() -> None:
    access, plugin = await _access(lambda _c: "", silent=True)
    with pytest.raises(BrokerTimeoutError, match="did not answer"):
        await access.grant("dev1", "pw1")
    assert _names(plugin) == ["createRole", "createClient"]
