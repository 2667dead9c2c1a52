"""Composition root of the two webhook receivers: settings in, a Starlette app out.

The app's lifespan owns every resource (pool, broker connection, publisher, inbox writer,
dispatcher, relay and marker) and releases them in order on shutdown, after uvicorn has drained
in-flight requests. Routes reach what the lifespan built through its typed state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.adapters.broker import (
    ConnectionGate,
    EventPublisher,
    connect_broker,
    declare_topology,
)
from shared.adapters.postgres.connections import ConnectionDirectory
from shared.bootstrap.health import Check, broker_check, database_check, ops_routes
from shared.bootstrap.serve import serve_from_env
from shared.domain.events import Source
from shared.infra import metrics
from shared.infra.db import create_pool
from shared.infra.settings import QboWebhookSettings, ReleasedWebhookSettings
from shared.ingest.dispatch import Dispatcher, PublishedMarker, cancel_quietly
from shared.ingest.group_commit import InboxWriter
from shared.ingest.http import ReceiverSpec, WebhookEndpoint
from shared.ingest.pipeline import Ingestor
from shared.ingest.relay import OutboxRelay
from shared.ingest.specs import qbo_spec, released_spec

QBO_PATH = "/webhooks/qbo"
RELEASED_PATH = "/webhooks/released"


class ReceiverState(TypedDict):
    endpoint: WebhookEndpoint
    relay: OutboxRelay
    checks: list[Check]


def receiver_state(request: Request) -> ReceiverState:
    return cast(ReceiverState, request.scope["state"])


def create_receiver_app(
    settings: QboWebhookSettings | ReleasedWebhookSettings,
    spec: ReceiverSpec,
    key: str,
    path: str,
    *,
    relay_interval_s: float = 1.0,
) -> Starlette:
    source: Source = "qbo" if spec.source == "qbo" else "released"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[ReceiverState]:
        async with (
            create_pool(
                settings.database_url,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                reset_sessions=False,
                statement_timeout_ms=settings.webhook_statement_timeout_ms,
                lock_timeout_ms=settings.webhook_lock_timeout_ms,
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
                pool,
                publisher,
                gate,
                interval_s=relay_interval_s,
                quiet=dispatcher.idle,
                in_flight=lambda: dispatcher.in_flight,
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
                yield {
                    "endpoint": WebhookEndpoint(spec, key, ingestor),
                    "relay": relay,
                    "checks": [database_check(pool), broker_check(connection)],
                }
            finally:
                await dispatcher.drain(timeout_s=5.0)
                await cancel_quietly(*tasks)
                await writer.stop()
                await marker.flush()
                await publisher.close()

    async def receive(request: Request) -> Response:
        response = await receiver_state(request)["endpoint"](request)
        metrics.WEBHOOKS.labels(source, str(response.status_code)).inc()
        return response

    return Starlette(
        routes=[
            Route(path, receive, methods=["POST"]),
            *ops_routes(lambda request: receiver_state(request)["checks"]),
        ],
        lifespan=lifespan,
    )


def create_qbo_receiver(
    settings: QboWebhookSettings, *, relay_interval_s: float = 1.0
) -> Starlette:
    return create_receiver_app(
        settings,
        qbo_spec(settings),
        settings.qbo_webhook_verifier_token.get_secret_value(),
        QBO_PATH,
        relay_interval_s=relay_interval_s,
    )


def create_released_receiver(
    settings: ReleasedWebhookSettings, *, relay_interval_s: float = 1.0
) -> Starlette:
    return create_receiver_app(
        settings,
        released_spec(settings),
        settings.released_webhook_key.get_secret_value(),
        RELEASED_PATH,
        relay_interval_s=relay_interval_s,
    )


def qbo_main() -> int:
    """``python -m services.qbo_webhooks``."""
    return serve_from_env(
        "qbo_webhooks",
        QboWebhookSettings,
        create_qbo_receiver,
        lambda s: (s.qbo_webhooks_host, s.qbo_webhooks_port),
    )


def released_main() -> int:
    """``python -m services.released_webhooks``."""
    return serve_from_env(
        "released_webhooks",
        ReleasedWebhookSettings,
        create_released_receiver,
        lambda s: (s.released_webhooks_host, s.released_webhooks_port),
    )
