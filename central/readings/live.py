"""Live WebSocket for owners: one socket per client, channels multiplexed on it, fan-out across worker processes
through PostgreSQL LISTEN/NOTIFY.

Wire protocol (JSON text frames):

    client → {"type": "auth", "token": "<access token>"}              first message, within ``auth_timeout_s``
    server → {"type": "ready", "user_id": "<uuid>"}
    client → {"type": "subscribe", "channel": "readings", "params": {}}
    server → {"type": "subscribed", "channel": "readings"}
    server → {"type": "event", "channel": "readings", "data": {...}}
    client → {"type": "unsubscribe", "channel": "readings"}
    server → {"type": "error", "code": "...", "message": "..."}       (bad message, unknown channel, ...)

The token travels in the first message, never in the URL (URLs end up in logs). A socket lives no longer than its
token: it is closed with 4401 when the token expires, unless the client sends a fresh token of the same user in
band (``{"type": "auth", "token": ...}`` again, answered by ``ready``); with 4401 when its session is revoked
(logout, password change or reset) and with 4403 when its user's role changes (``revoke``, fed by the PostgreSQL
channel ``central.http.auth.SESSIONS_CHANNEL`` so every central process closes its own sockets).
Other subsystems add channels
(``LiveHub.add_channel``) and PostgreSQL notification sources (``LiveHub.listen``); the market adds its own.
A client that does not keep up (send queue full) is disconnected rather than slowing everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from aiohttp import WSMsgType, web

from central.archive.pg import archived
from central.errors import CentralError
from central.ingest.events import NOTIFY_CHANNEL
from protocol.record import POWER_NOT_AVAILABLE

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
#: The user's role changed: reconnect with a token carrying the new role.
CLOSE_ROLE_CHANGED = 4403
CLOSE_TOO_SLOW = 4408
#: The user already has ``max_sockets_per_user`` sockets open on this process.
CLOSE_TOO_MANY = 4429
MAX_MESSAGE_BYTES = 64 * 1024
#: Sockets one user may hold open on one central process (browser tabs, devices). Every socket's subscriptions cost
#: queries on each event (``market.mine`` three per trade batch), so an unbounded number let one account make every
#: event cost the server whatever it liked.
MAX_SOCKETS_PER_USER = 32


class Caller(Protocol):
    """Who is on the socket (``central.http.auth.Principal`` fits)."""

    @property
    def user_id(self) -> UUID: ...

    @property
    def role(self) -> str: ...


Authenticate = Callable[[str], "Caller | Awaitable[Caller]"]
"""Turns the token of the auth message into a caller; raises any exception when the token is not valid. A caller
may also carry ``expires_at`` (UNIX seconds; the socket is closed then) and ``session`` (its login's id, matched
against revocations)."""


class ChannelError(CentralError):
    """A subscription was refused; ``code`` goes to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False)
class Session:
    """One authenticated socket."""

    caller: Caller
    queue: asyncio.Queue[str]
    #: channel name → the channel's per-session state (whatever the channel keeps).
    subscriptions: dict[str, Any] = field(default_factory=dict)
    closed: bool = False
    overflowed: bool = False
    ws: web.WebSocketResponse | None = None
    #: Set to wake the expiry watchdog when a fresh token arrives in band.
    renewed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expires_at(self) -> float | None:
        exp = getattr(self.caller, "expires_at", None)
        return float(exp) if isinstance(exp, int | float) else None

    @property
    def session_id(self) -> UUID | None:
        sid = getattr(self.caller, "session", None)
        return sid if isinstance(sid, UUID) else None

    def send(self, message: Mapping[str, Any]) -> bool:
        """Queue a message; False (and the session is marked for closing) when the client is too slow."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(json.dumps(message, separators=(",", ":")))
        except asyncio.QueueFull:
            self.closed = self.overflowed = True
            return False
        return True

    def event(self, channel: str, data: Mapping[str, Any]) -> bool:
        return self.send({"type": "event", "channel": channel, "data": data})


class Channel(Protocol):
    name: str

    async def subscribe(self, hub: LiveHub, session: Session, params: Mapping[str, Any]) -> Any:
        """Check the caller may subscribe (raise ``ChannelError`` if not); return the per-session state."""
        ...


class LiveHub:
    def __init__(self, authenticate: Authenticate, *, auth_timeout_s: float = 10.0, queue_size: int = 1000,
                 max_sockets_per_user: int = MAX_SOCKETS_PER_USER) -> None:
        self._pool: asyncpg.Pool | None = None
        self._authenticate = authenticate
        self._auth_timeout_s = auth_timeout_s
        self._queue_size = queue_size
        self._max_sockets_per_user = max_sockets_per_user
        self._channels: dict[str, Channel] = {}
        self._listeners: dict[str, Callable[[str], Awaitable[None]]] = {}
        self._sessions: set[Session] = set()
        self._conn: asyncpg.Connection | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- composition -----------------------------------------------------------------------------------------
    def add_channel(self, channel: Channel) -> None:
        if channel.name in self._channels:
            raise ValueError(f"channel {channel.name!r} registered twice")
        self._channels[channel.name] = channel

    def listen(self, pg_channel: str, callback: Callable[[str], Awaitable[None]]) -> None:
        """Call ``callback(payload)`` for every NOTIFY on ``pg_channel`` (registered before ``start``)."""
        self._listeners[pg_channel] = callback

    async def revoke(self, payload: str) -> None:
        """Apply a revocation notice (``central.http.auth.Revocation`` JSON): close the sockets it ends."""
        try:
            data = json.loads(payload)
            kind, user = str(data["kind"]), UUID(str(data["user"]))
            sid = None if data.get("session") is None else UUID(str(data["session"]))
            role = data.get("role")
        except (ValueError, KeyError, TypeError):
            log.warning("malformed session notice ignored")
            return
        for s in list(self._sessions):
            if s.closed or s.caller.user_id != user:
                continue
            if kind == "role":
                if role != _role_value(s.caller.role):
                    self._close(s, CLOSE_ROLE_CHANGED, b"role changed")
            elif sid is None or s.session_id is None or s.session_id == sid:
                self._close(s, CLOSE_UNAUTHENTICATED, b"session revoked")

    def _close(self, session: Session, code: int, reason: bytes) -> None:
        session.closed = True
        ws = session.ws
        if ws is None or ws.closed:
            return

        async def close() -> None:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=reason)

        task = asyncio.get_running_loop().create_task(close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expiry(self, session: Session) -> None:
        """Close the socket when its token expires (a fresh token in band moves the deadline)."""
        while not session.closed:
            exp = session.expires_at
            if exp is None:
                return
            session.renewed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.renewed.wait(), timeout=max(0.0, exp - time.time()))
                continue
            if session.expires_at == exp:
                self._close(session, CLOSE_UNAUTHENTICATED, b"token expired")
                return

    def subscribers(self, channel: str) -> list[Session]:
        return [s for s in self._sessions if channel in s.subscriptions and not s.closed]

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the live hub is not started")
        return self._pool

    async def start(self, pool: asyncpg.Pool) -> None:
        """Open the LISTEN connection (one per process, taken from ``pool``)."""
        self._pool = pool
        self._conn = await pool.acquire()
        for pg_channel in self._listeners:
            await self._conn.add_listener(pg_channel, self._on_notify)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for s in list(self._sessions):
            s.closed = True
            if s.ws is not None and not s.ws.closed:
                with contextlib.suppress(Exception):
                    await s.ws.close(code=1001, message=b"server shutting down")
        conn, self._conn = self._conn, None
        if conn is not None:
            for pg_channel in self._listeners:
                with contextlib.suppress(Exception):
                    await conn.remove_listener(pg_channel, self._on_notify)
            await self.pool.release(conn)

    def _on_notify(self, _conn: object, _pid: int, pg_channel: str, payload: str) -> None:
        callback = self._listeners.get(pg_channel)
        if callback is None:
            return
        task = asyncio.get_running_loop().create_task(self._run(callback, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, callback: Callable[[str], Awaitable[None]], payload: str) -> None:
        try:
            await callback(payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live notification handler failed")

    # --- the socket ------------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        session = await self._authenticate_socket(ws)
        if session is None:
            return ws
        user = session.caller.user_id
        if sum(1 for s in self._sessions if s.caller.user_id == user) >= self._max_sockets_per_user:
            await ws.send_str(json.dumps({"type": "error", "code": "too_many_sockets",
                                          "message": "too many live sockets open; close one"}))
            await ws.close(code=CLOSE_TOO_MANY, message=b"too many sockets")
            return ws
        self._sessions.add(session)
        sender = asyncio.create_task(self._sender(ws, session))
        expiry = asyncio.create_task(self._expiry(session))
        try:
            session.send({"type": "ready", "user_id": str(session.caller.user_id)})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_client_message(session, msg.data)
                if session.closed:
                    break
        finally:
            self._sessions.discard(session)
            session.closed = True
            for task in (sender, expiry):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not ws.closed:
                await ws.close()
        return ws

    async def _authenticate_socket(self, ws: web.WebSocketResponse) -> Session | None:
        try:
            msg = await ws.receive(timeout=self._auth_timeout_s)
        except TimeoutError:
            await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authenticate first")
            return None
        caller = None
        if msg.type == WSMsgType.TEXT:
            data = _json_object(msg.data)
            token = data.get("token") if data and data.get("type") == "auth" else None
            if isinstance(token, str):
                caller = await self._caller(token)
        if caller is None:
            if not ws.closed:
                await ws.send_str(json.dumps({"type": "error", "code": "unauthorized", "message": "invalid token"}))
                await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"unauthorized")
            return None
        return Session(caller, asyncio.Queue(maxsize=self._queue_size), ws=ws)

    async def _caller(self, token: str) -> Caller | None:
        try:
            result = self._authenticate(token)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any failure of the token check means "not authenticated"
            return None
        return result

    async def _reauthenticate(self, session: Session, token: object) -> None:
        """A fresh token in band: same user and role only (else the socket is closed as for a revocation)."""
        caller = await self._caller(token) if isinstance(token, str) else None
        if caller is None or caller.user_id != session.caller.user_id:
            session.send({"type": "error", "code": "unauthorized", "message": "invalid token"})
            return
        if _role_value(caller.role) != _role_value(session.caller.role):
            self._close(session, CLOSE_ROLE_CHANGED, b"role changed")
            return
        session.caller = caller
        session.renewed.set()
        session.send({"type": "ready", "user_id": str(caller.user_id)})

    async def _sender(self, ws: web.WebSocketResponse, session: Session) -> None:
        while True:
            if session.overflowed:
                await ws.close(code=CLOSE_TOO_SLOW, message=b"too slow")
                return
            try:
                text = await asyncio.wait_for(session.queue.get(), timeout=1.0)
            except TimeoutError:
                continue
            await ws.send_str(text)

    async def _on_client_message(self, session: Session, text: str) -> None:
        data = _json_object(text)
        kind = data.get("type") if data else None
        name = data.get("channel") if data else None
        if kind == "auth" and data is not None:
            await self._reauthenticate(session, data.get("token"))
            return
        if kind not in ("subscribe", "unsubscribe") or not isinstance(name, str) or data is None:
            session.send({"type": "error", "code": "bad_message", "message": "expected subscribe or unsubscribe"})
            return
        channel = self._channels.get(name)
        if channel is None:
            session.send({"type": "error", "code": "unknown_channel", "message": f"no channel {name!r}"})
            return
        if kind == "unsubscribe":
            session.subscriptions.pop(name, None)
            session.send({"type": "unsubscribed", "channel": name})
            return
        params = data.get("params", {})
        if not isinstance(params, dict):
            session.send({"type": "error", "code": "bad_message", "message": "params must be an object"})
            return
        try:
            state = await channel.subscribe(self, session, params)
        except ChannelError as exc:
            session.send({"type": "error", "channel": name, "code": exc.code, "message": exc.message})
            return
        session.subscriptions[name] = state
        session.send({"type": "subscribed", "channel": name})


def _role_value(role: object) -> str:
    return str(getattr(role, "value", role))


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON from a client
        return None
    return data if isinstance(data, dict) else None


class ReadingsChannel:
    """``readings``: every reading stored for a meter the caller owns (optionally one meter: ``{"meter_id": ...}``).

    Ownership is checked when each reading is delivered, so claims and releases take effect immediately; a reading
    taken before the meter's last release (a backlog arriving late) stays its previous owner's, as over HTTP.
    """

    name = "readings"

    async def subscribe(self, hub: LiveHub, session: Session, params: Mapping[str, Any]) -> UUID | None:
        meter = params.get("meter_id")
        if meter is None:
            return None
        try:
            meter_id = UUID(str(meter))
        except ValueError:
            raise ChannelError("bad_params", "meter_id must be a UUID") from None
        owner = await hub.pool.fetchval("SELECT owner_id FROM meters WHERE id = $1", meter_id)
        if owner != session.caller.user_id:
            raise ChannelError("not_found", "no such meter among yours")
        return meter_id

    @staticmethod
    def register(hub: LiveHub) -> ReadingsChannel:
        channel = ReadingsChannel()
        hub.add_channel(channel)

        async def on_stored(payload: str) -> None:
            await channel.fan_out(hub, payload)

        hub.listen(NOTIFY_CHANNEL, on_stored)
        return channel

    async def fan_out(self, hub: LiveHub, payload: str) -> None:
        sessions = hub.subscribers(self.name)
        if not sessions:
            return
        note = json.loads(payload)
        owners = sorted({str(s.caller.user_id) for s in sessions})
        rows = await hub.pool.fetch(
            "SELECT d.device_id, d.public_key, m.id AS meter_id, m.serial, r.seq, r.timestamp_ms, r.import_wh, "
            "r.export_wh, r.power_w, r.flags, r.prev_hash, r.signature, r.device_key, r.meter_key, m.owner_id "
            "FROM devices d JOIN reading_rows r ON r.device_key = d.device_key "
            "JOIN meters m ON m.meter_key = r.meter_key "
            "WHERE d.device_id = $1 AND r.seq BETWEEN $2 AND $3 AND m.id = ANY($4::uuid[]) "
            "AND m.owner_id = ANY($5::uuid[]) "
            # a reading from before the meter's last release is its previous owner's history (as over HTTP)
            "AND (m.released_at IS NULL OR r.timestamp_ms >= (extract(epoch FROM m.released_at) * 1000)::bigint) "
            "ORDER BY r.seq",
            note["device"], note["first"], note["last"], note["meters"], owners,
        )
        for row in rows:
            reading = archived(row)
            data = {
                "meter_id": str(row["meter_id"]),
                "meter_serial": reading.meter_serial,
                "device_id": reading.device_id,
                "seq": reading.seq,
                "timestamp_ms": reading.timestamp_ms,
                "import_wh": reading.import_wh,
                "export_wh": reading.export_wh,
                "power_w": None if reading.power_w == POWER_NOT_AVAILABLE else reading.power_w,
                "flags": reading.flags,
                "record_hash": reading.record_hash().hex(),
            }
            for s in sessions:
                only = s.subscriptions.get(self.name)
                if s.caller.user_id == row["owner_id"] and (only is None or only == row["meter_id"]):
                    s.event(self.name, data)
