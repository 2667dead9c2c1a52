"""Composition root of a webhook receiver: settings in, a Starlette app out.

The app's lifespan owns every resource (pool, broker connection, publisher, background relay and
marker) and releases them in order on shutdown, after uvicorn has drained in-flight requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.adapters.broker import EventPublisher, connect_broker, declare_topology
from shared.adapters.postgres.connections import ConnectionDirectory
from shared.domain.events import Source
from shared.infra.db import create_pool
from shared.infra.settings import InfraSettings
from shared.ingest.dispatch import Dispatcher, PublishedMarker, cancel_quietly
from shared.ingest.group_commit import InboxWriter
from shared.ingest.http import ReceiverSpec, WebhookEndpoint
from shared.ingest.pipeline import Ingestor
from shared.ingest.relay import OutboxRelay


class ConnectionGate:
    """Publishing is attempted only while the robust connection is actually connected."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection

    def available(self) -> bool:
        connected = getattr(self._connection, "connected", None)
        if isinstance(connected, asyncio.Event):
            return connected.is_set()
        return not self._connection.is_closed


def create_receiver_app(
    settings: InfraSettings,
    spec: ReceiverSpec,
    key: str,
    path: str,
    *,
    relay_interval_s: float = 1.0,
) -> Starlette:
    source: Source = "qbo" if spec.source == "qbo" else "released"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with (
            create_pool(
                settings.database_url,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                reset_sessions=False,
            ) as pool,
            connect_broker(settings.amqp_url) as connection,
        ):
            setup = await connection.channel()
            await declare_topology(setup)
            await setup.close()
            publisher = await EventPublisher.open(connection)
            gate = ConnectionGate(connection)
            marker = PublishedMarker(pool)
            dispatcher = Dispatcher(publisher, gate, marker)
            relay = OutboxRelay(
                pool, publisher, gate, interval_s=relay_interval_s, quiet=dispatcher.idle
            )
            connection.reconnect_callbacks.add(lambda *_: relay.kick())
            writer = InboxWriter(pool)
            writer.start()
            ingestor = Ingestor(source, ConnectionDirectory(pool), writer, dispatcher)
            tasks = [
                asyncio.create_task(marker.run()),
                asyncio.create_task(relay.run()),
                asyncio.create_task(dispatcher.run()),
            ]
            try:
                yield {"endpoint": WebhookEndpoint(spec, key, ingestor), "relay": relay}
            finally:
                await dispatcher.drain(timeout_s=5.0)
                await cancel_quietly(*tasks)
                await writer.stop()
                await marker.flush()
                await publisher.close()

    async def receive(request: Request) -> Any:
        endpoint: WebhookEndpoint = request.state.endpoint
        return await endpoint(request)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": f"{spec.source}_webhooks"})

    return Starlette(
        routes=[Route(path, receive, methods=["POST"]), Route("/healthz", health)],
        lifespan=lifespan,
    )
