"""Each subsystem's wiring into the app: its routes, and what the app starts from its built services (background
jobs, MQTT subscriptions, readiness checks, a lifetime). One module per subsystem, each exposing ``SUBSYSTEM``;
``central.app`` lists them (imported as code, in start order). See ``docs/central.md``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from central.http.context import ReadyCheck
from central.http.routes import RouteTable
from central.jobs import Job
from central.mqtt import Mqtt
from central.services import Services


def no_jobs(_services: Services) -> Sequence[Job]:
    return ()


def no_subscriptions(_services: Services, _mqtt: Mqtt) -> None:
    return None


def no_ready_checks(_services: Services) -> Mapping[str, ReadyCheck]:
    return {}


@contextlib.asynccontextmanager
async def no_lifetime(_services: Services) -> AsyncIterator[None]:
    yield


@dataclass(frozen=True)
class Subsystem:
    """How one subsystem plugs into the app. Every function receives the built :class:`Services`."""

    name: str
    routes: tuple[RouteTable, ...] = ()
    #: Periodic background work, run by the app's ``JobRunner``.
    jobs: Callable[[Services], Sequence[Job]] = no_jobs
    #: Adds MQTT subscriptions (called only when MQTT is enabled, before the client starts).
    subscribe: Callable[[Services, Mqtt], None] = no_subscriptions
    #: ``/readyz`` fails (503) while one of these raises or takes longer than 2 s.
    ready_checks: Callable[[Services], Mapping[str, ReadyCheck]] = no_ready_checks
    #: Started after the adapters and before the jobs; stopped in reverse order.
    lifetime: Callable[[Services], AbstractAsyncContextManager[None]] = no_lifetime
