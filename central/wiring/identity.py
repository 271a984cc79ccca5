"""Identity: account, device and meter routes; the challenge sweeper; MQTT challenge replies and device status."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence

from central import locks
from central.db.leadership import XactLock
from central.http.errors import map_error
from central.identity import auth_routes, device_routes, meter_routes, session_routes
from central.identity.errors import IdentityError
from central.identity.http_errors import ERRORS
from central.jobs import Job
from central.mqtt import Mqtt, MqttMessage
from central.services import Services
from central.wiring import Subsystem
from protocol import topics
from protocol.challenge import ChallengeReply
from protocol.errors import MalformedError

log = logging.getLogger(__name__)


def jobs(services: Services) -> Sequence[Job]:
    devices = services.identity.devices

    async def sweep() -> None:
        deleted = await devices.sweep_challenges()
        sent = await devices.rechallenge_online_pending()
        if deleted or sent:
            log.info("challenge sweep", extra={"deleted": deleted, "rechallenged": sent})

    return [
        Job("challenge-sweeper", services.config.identity.challenge_sweep_interval_s, sweep,
            lock=XactLock(services.pool, locks.CHALLENGE_SWEEP)),
    ]


def subscribe(services: Services, mqtt: Mqtt) -> None:
    devices = services.identity.devices

    async def on_reply(msg: MqttMessage) -> None:
        try:
            device_id, _ = topics.parse(msg.topic)
            reply = ChallengeReply.from_json(msg.payload)
        except MalformedError as exc:
            log.warning("malformed challenge reply dropped", extra={"topic": msg.topic[:120], "error": str(exc)})
            return
        try:
            status = await devices.answer_challenge(device_id, reply.nonce, reply.signature)
        except IdentityError as exc:
            mapped = map_error(exc, ERRORS)
            code = mapped.code if mapped is not None else type(exc).__name__
            log.warning("challenge reply refused", extra={"device_id": device_id, "code": code})
            return
        log.info("challenge answered over MQTT", extra={"device_id": device_id, "status": status})

    async def on_status(msg: MqttMessage) -> None:
        try:
            device_id, _ = topics.parse(msg.topic)
            online = json.loads(msg.payload).get("online") is True
        except (MalformedError, ValueError, AttributeError):
            return
        if online:
            await devices.challenge_if_pending(device_id)
        else:  # its session ended (the will, or a clean stop): the next one is challenged at once
            await devices.session_ended(device_id)

    mqtt.subscribe(topics.shared(topics.TopicKind.CHALLENGE_REPLY), on_reply, qos=1, concurrency=2)
    mqtt.subscribe(topics.shared(topics.TopicKind.STATUS), on_status, qos=1)


@contextlib.asynccontextmanager
async def lifetime(services: Services) -> AsyncIterator[None]:
    """Reset and verification e-mails requested before shutdown are still sent (they run after their answer)."""
    try:
        yield
    finally:
        await services.identity.accounts.settled()


SUBSYSTEM = Subsystem(
    "identity",
    routes=(auth_routes.routes, session_routes.routes, device_routes.routes, meter_routes.routes),
    jobs=jobs,
    subscribe=subscribe,
    lifetime=lifetime,
)
