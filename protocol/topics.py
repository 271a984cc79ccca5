"""MQTT topics (protocol §7 MQTT topics). ``{device_id}`` is the base58 device public key."""

from __future__ import annotations

from enum import StrEnum

from protocol.errors import MalformedError
from protocol.keys import public_key_from_device_id

PREFIX = "gtx/v1/d"
SHARE_GROUP = "central"


class TopicKind(StrEnum):
    READINGS = "readings"
    ACK = "ack"
    CHALLENGE = "challenge"
    CHALLENGE_REPLY = "challenge/reply"
    SYNC = "sync"
    SYNC_REPLY = "sync/reply"
    STATUS = "status"


def topic(device_id: str, kind: TopicKind) -> str:
    return f"{PREFIX}/{device_id}/{kind}"


def readings(device_id: str) -> str:
    return topic(device_id, TopicKind.READINGS)


def ack(device_id: str) -> str:
    return topic(device_id, TopicKind.ACK)


def challenge(device_id: str) -> str:
    return topic(device_id, TopicKind.CHALLENGE)


def challenge_reply(device_id: str) -> str:
    return topic(device_id, TopicKind.CHALLENGE_REPLY)


def sync(device_id: str) -> str:
    return topic(device_id, TopicKind.SYNC)


def sync_reply(device_id: str) -> str:
    return topic(device_id, TopicKind.SYNC_REPLY)


def status(device_id: str) -> str:
    return topic(device_id, TopicKind.STATUS)


def shared(kind: TopicKind, group: str = SHARE_GROUP) -> str:
    """Central's shared subscription for one kind of device→central message."""
    return f"$share/{group}/{PREFIX}/+/{kind}"


SHARED_READINGS = shared(TopicKind.READINGS)


def parse(name: str) -> tuple[str, TopicKind]:
    """Split a concrete topic into (device id, kind); ``MalformedError`` if it is not a protocol topic or the
    device id is not a valid base58 public key."""
    if not name.startswith(PREFIX + "/"):
        raise MalformedError("not a GridTokenX v1 topic")
    rest = name[len(PREFIX) + 1 :]
    device, sep, kind = rest.partition("/")
    if not sep:
        raise MalformedError("topic has no message kind")
    try:
        parsed = TopicKind(kind)
    except ValueError as exc:
        raise MalformedError(f"unknown topic kind {kind!r}") from exc
    public_key_from_device_id(device)
    return device, parsed
