"""Identity plug-in: account, device and meter routes; the identity services; MQTT challenge replies; the
challenge sweeper."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from central.app import MAILER, MQTT, POOL, SIGNER, TOKENS, Registry, background
from central.http.context import CONFIG
from central.http.errors import ApiError
from central.identity import auth_routes, device_routes, meter_routes
from central.identity.accounts import Accounts
from central.identity.context import IDENTITY, Identity
from central.identity.devices import Devices
from central.identity.meters import Meters
from central.mqtt import MqttMessage
from protocol import topics
from protocol.challenge import ChallengeReply
from protocol.errors import MalformedError

log = logging.getLogger(__name__)
#: Only one worker process sweeps per round ("gtx-swp").
SWEEP_LOCK_KEY = 0x6774782D737770


async def _identity_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pool = app[POOL]
    app[IDENTITY] = Identity(
        accounts=Accounts(pool, config.auth, config.identity, app[TOKENS], app[MAILER]),
        devices=Devices(pool, config.identity, app.get(MQTT), app.get(SIGNER)),
        meters=Meters(pool, config.identity),
    )
    yield


async def _sweeper(app: web.Application) -> None:
    interval = app[CONFIG].identity.challenge_sweep_interval_s
    pool = app[POOL]
    while True:
        try:
            async with pool.acquire() as conn, conn.transaction():
                mine = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK_KEY)
                if mine:
                    deleted = await app[IDENTITY].devices.sweep_challenges()
                    sent = await app[IDENTITY].devices.rechallenge_online_pending()
                    if deleted or sent:
                        log.info("challenge sweep", extra={"deleted": deleted, "rechallenged": sent})
        except (OSError, ApiError) as exc:
            log.warning("challenge sweep failed", extra={"error": type(exc).__name__})
        except Exception:
            log.exception("challenge sweep failed")
        await asyncio.sleep(interval)


def install(registry: Registry) -> None:
    registry.add_routes(auth_routes.routes)
    registry.add_routes(device_routes.routes)
    registry.add_routes(meter_routes.routes)
    registry.add_task(_identity_ctx)
    registry.add_task(background("challenge-sweeper", _sweeper))
    if not registry.mqtt_enabled:
        return
    app = registry.app

    async def on_reply(msg: MqttMessage) -> None:
        try:
            device_id, _ = topics.parse(msg.topic)
            reply = ChallengeReply.from_json(msg.payload)
        except MalformedError as exc:
            log.warning("malformed challenge reply dropped", extra={"topic": msg.topic[:120], "error": str(exc)})
            return
        try:
            status = await app[IDENTITY].devices.answer_challenge(device_id, reply.nonce, reply.signature)
        except ApiError as exc:
            log.warning("challenge reply refused", extra={"device_id": device_id, "code": exc.code})
            return
        log.info("challenge answered over MQTT", extra={"device_id": device_id, "status": status})

    async def on_status(msg: MqttMessage) -> None:
        try:
            device_id, _ = topics.parse(msg.topic)
            online = json.loads(msg.payload).get("online") is True
        except (MalformedError, ValueError, AttributeError):
            return
        if online:
            await app[IDENTITY].devices.challenge_if_pending(device_id)

    registry.subscribe(topics.shared(topics.TopicKind.CHALLENGE_REPLY), on_reply, qos=1, concurrency=2)
    registry.subscribe(topics.shared(topics.TopicKind.STATUS), on_status, qos=1)
