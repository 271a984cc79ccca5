"""What the broker lets each kind of client do, as Mosquitto dynamic-security documents (pure: no I/O).

Three roles (docs/decisions/0016-broker-dynamic-security.md):

- ``gtx-device:<device id>`` — one per gateway, held by its client (user name = its device id): it confines the
  gateway to ``gtx/v1/d/<its id>/…`` (Mosquitto 2.0's dynamic-security ACLs do not substitute ``%u``, so each
  gateway's topics are written out): it publishes its readings, challenge replies, sync requests and (retained)
  status, and subscribes to and receives its acks, challenges and sync replies.
- ``gtx-central`` — central's client: subscribes to (and receives) every device's readings, challenge replies, sync
  requests and status, also through ``$share/<group>/…``; publishes every device's acks, challenges and sync replies.
- ``gtx-broker-admin`` — sends dynamic-security commands (``$CONTROL/dynamic-security/v1``) and reads their answers;
  central's client has it too, so registering and revoking a gateway changes the broker at once.

Everything else is denied: the default ACL access denies publishing, subscribing and receiving.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from protocol.topics import PREFIX, TopicKind

DEVICE_ROLE_PREFIX = "gtx-device:"
CENTRAL_ROLE = "gtx-central"
ADMIN_ROLE = "gtx-broker-admin"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
#: Mosquitto's own password hashing for dynamic-security clients: PBKDF2-HMAC-SHA512, 12-byte salt.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

#: What a device sends (central reads) and what central sends (a device reads).
DEVICE_SENDS = (TopicKind.READINGS, TopicKind.CHALLENGE_REPLY, TopicKind.SYNC, TopicKind.STATUS)
CENTRAL_SENDS = (TopicKind.ACK, TopicKind.CHALLENGE, TopicKind.SYNC_REPLY)

Acl = dict[str, Any]


def _acl(acltype: str, topic: str, priority: int = 0) -> Acl:
    return {"acltype": acltype, "topic": topic, "priority": priority, "allow": True}


def device_role(device_id: str) -> str:
    return DEVICE_ROLE_PREFIX + device_id


def device_acls(device_id: str) -> list[Acl]:
    own = f"{PREFIX}/{device_id}"
    return [
        *(_acl("publishClientSend", f"{own}/{k}") for k in DEVICE_SENDS),
        *(_acl("subscribePattern", f"{own}/{k}") for k in CENTRAL_SENDS),
        *(_acl("publishClientReceive", f"{own}/{k}") for k in CENTRAL_SENDS),
    ]


def central_acls() -> list[Acl]:
    every = f"{PREFIX}/+"
    return [
        *(_acl("subscribePattern", f"{every}/{k}") for k in DEVICE_SENDS),
        *(_acl("subscribePattern", f"$share/+/{every}/{k}") for k in DEVICE_SENDS),
        *(_acl("publishClientReceive", f"{every}/{k}") for k in DEVICE_SENDS),
        *(_acl("publishClientSend", f"{every}/{k}") for k in CENTRAL_SENDS),
    ]


def admin_acls() -> list[Acl]:
    return [
        _acl("publishClientSend", "$CONTROL/dynamic-security/#"),
        _acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
        _acl("subscribePattern", "$CONTROL/dynamic-security/#"),
    ]


def roles() -> list[dict[str, Any]]:
    return [
        {"rolename": CENTRAL_ROLE, "textname": "GridTokenX central", "acls": central_acls()},
        {"rolename": ADMIN_ROLE, "textname": "dynamic-security commands", "acls": admin_acls()},
    ]


def hashed_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """A dynamic-security client's ``password``/``salt``/``iterations`` for ``password`` (Mosquitto's own scheme)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": PBKDF2_ITERATIONS,
    }


def initial_config(central_username: str, central_password: str) -> dict[str, Any]:
    """The plugin's first configuration file: the three roles, central's client (central + admin roles), no
    gateways (registration adds them), everything else denied."""
    return {
        "clients": [{
            "username": central_username,
            "textname": "GridTokenX central",
            **hashed_password(central_password),
            "roles": [{"rolename": CENTRAL_ROLE}, {"rolename": ADMIN_ROLE}],
        }],
        "groups": [],
        "roles": roles(),
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,  # unsubscribing never reveals or changes anything
        },
    }


# --- commands (https://mosquitto.org/documentation/dynamic-security/) ---------------------------------------------


def create_device_role(device_id: str) -> dict[str, Any]:
    return {"command": "createRole", "rolename": device_role(device_id), "textname": "a GridTokenX gateway's topics",
            "acls": device_acls(device_id)}


def create_device(device_id: str, password: str) -> dict[str, Any]:
    return {"command": "createClient", "username": device_id, "password": password,
            "textname": "GridTokenX gateway", "roles": [{"rolename": device_role(device_id)}]}


def delete_device_role(device_id: str) -> dict[str, Any]:
    return {"command": "deleteRole", "rolename": device_role(device_id)}


def delete_client(device_id: str) -> dict[str, Any]:
    """Removes the client; the broker disconnects it at once."""
    return {"command": "deleteClient", "username": device_id}
