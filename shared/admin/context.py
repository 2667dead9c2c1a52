"""What the admin service's routes reach: the resources its lifespan built, as typed state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypedDict, cast

import asyncpg
from aio_pika.abc import AbstractRobustConnection
from starlette.requests import Request

from shared.adapters.broker import EventPublisher, connect_broker
from shared.adapters.postgres.budgets import ApiBudget
from shared.admin.connect import ConnectFlow
from shared.admin.settings import AdminServiceSettings
from shared.admin.store import AdminConnections
from shared.ops.replay import BatchWriter, Throttle


@dataclass(frozen=True)
class AdminContext:
    pool: asyncpg.Pool
    connections: AdminConnections
    flow: ConnectFlow
    settings: AdminServiceSettings


@dataclass(frozen=True)
class OpsContext:
    pool: asyncpg.Pool
    amqp_url: str
    throttle: Throttle
    # Writes a bulk replay's QBO documents and payments in batches (None: one event each).
    batched: BatchWriter | None = None

    @asynccontextmanager
    async def broker(self) -> AsyncIterator[AbstractRobustConnection]:
        async with connect_broker(self.amqp_url, timeout=5.0) as connection:
            yield connection

    @asynccontextmanager
    async def publisher(self) -> AsyncIterator[EventPublisher]:
        async with self.broker() as connection:
            publisher = await EventPublisher.open(connection)
            try:
                yield publisher
            finally:
                await publisher.close()


class AdminState(TypedDict):
    admin: AdminContext
    ops: OpsContext
    # The demo connection's start-up task (None unless DEMO_CONNECTION is set).
    demo_task: asyncio.Task[None] | None
    # Readiness checks (``shared.bootstrap.health``): None when fine, else what is wrong.
    checks: list[Callable[[], Awaitable[str | None]]]
    # The API budgets by side ("qbo", "released"), to show their use.
    budgets: dict[str, ApiBudget]


def admin_state(request: Request) -> AdminState:
    return cast(AdminState, request.scope["state"])
