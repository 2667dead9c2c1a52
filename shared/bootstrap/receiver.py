"""Composition root of the two webhook receivers: settings in, a Starlette app out.

The app's lifespan owns every resource (pool, broker connection, publisher, inbox writer,
dispatcher, relay and marker) and releases them in order on shutdown, after uvicorn has drained
in-flight requests. Routes reach what the lifespan built through its typed state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypedDict, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from shared.adapters.broker import (
    ConnectionGate,
    EventPublisher,
    connect_broker,
    declare_topology,
)
from shared.adapters.postgres.connections import ConnectionDirectory
from shared.bootstrap.gc_policy import tune_gc
from shared.bootstrap.health import Check, broker_check, database_check, ops_routes
from shared.bootstrap.serve import serve_from_env
from shared.domain.events import Source
from shared.infra import metrics
from shared.infra.db import create_pool
from shared.infra.settings import QboWebhookSettings, ReleasedWebhookSettings
from shared.ingest.dispatch import Dispatcher, cancel_quietly
from shared.ingest.group_commit import InboxWriter
from shared.ingest.http import ReceiverSpec, WebhookEndpoint
from shared.ingest.marker import PublishedMarker
from shared.ingest.pipeline import Ingestor
from shared.ingest.relay import OutboxRelay, relay_beside
from shared.ingest.specs import qbo_spec, released_spec

QBO_PATH = "/webhooks/qbo"
RELEASED_PATH = "/webhooks/released"


class ReceiverState(TypedDict):
    endpoint: WebhookEndpoint
    relay: OutboxRelay
    checks: list[Check]


def receiver_state(request: Request) -> ReceiverState:
    return cast(ReceiverState, request.scope["state"])


class _Webhook:
    """The webhook route as a bare ASGI app: the endpoint lives in the lifespan's state."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["state"]["endpoint"](scope, receive, send)


class ReceiverApp(Starlette):
    """Starlette for the ops routes and the odd request; a POST to the webhook path, which is
    nearly all the traffic, goes straight to the endpoint, past routing and middleware."""

    def __init__(self, webhook_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook_path = webhook_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.webhook_path
            and scope["method"] == "POST"
        ):
            await scope["state"]["endpoint"](scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _status_counter(source: str) -> Callable[[int], None]:
    children: dict[int, Any] = {}

    def count(status: int) -> None:
        child = children.get(status)
        if child is None:
            child = children[status] = metrics.WEBHOOKS.labels(source, str(status))
        child.inc()

    return count


def inbox_writers(pool_max: int) -> int:
    """Group-commit writers: up to 4 (smaller groups committed side by side answered 100-event
    posts faster in bench_ingest than 2 writers of bigger groups), leaving two connections of
    the pool to the marker, the relay and account lookups."""
    return max(1, min(4, pool_max - 2))


def create_receiver_app(
    settings: QboWebhookSettings | ReleasedWebhookSettings,
    spec: ReceiverSpec,
    key: str,
    path: str,
    *,
    relay_interval_s: float = 1.0,
) -> ReceiverApp:
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
            relay = relay_beside(dispatcher, pool, publisher, gate, interval_s=relay_interval_s)
            connection.reconnect_callbacks.add(lambda *_: relay.kick())
            writer = InboxWriter(pool, writers=inbox_writers(settings.db_pool_max), max_rows=600)
            writer.start()
            ingestor = Ingestor(source, ConnectionDirectory(pool), writer, dispatcher)
            tasks = [
                asyncio.create_task(marker.run()),
                asyncio.create_task(relay.run()),
                asyncio.create_task(dispatcher.run()),
            ]
            try:
                yield {
                    "endpoint": WebhookEndpoint(
                        spec, key, ingestor, on_status=_status_counter(source)
                    ),
                    "relay": relay,
                    "checks": [database_check(pool), broker_check(connection)],
                }
            finally:
                await dispatcher.drain(timeout_s=5.0)
                await cancel_quietly(*tasks)
                await writer.stop()
                await marker.flush()
                await publisher.close()

    return ReceiverApp(
        path,
        routes=[
            Route(path, _Webhook(), methods=["POST"]),
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
    tune_gc()
    return serve_from_env(
        "qbo_webhooks",
        QboWebhookSettings,
        create_qbo_receiver,
        lambda s: (s.qbo_webhooks_host, s.qbo_webhooks_port),
    )


def released_main() -> int:
    """``python -m services.released_webhooks``."""
    tune_gc()
    return serve_from_env(
        "released_webhooks",
        ReleasedWebhookSettings,
        create_released_receiver,
        lambda s: (s.released_webhooks_host, s.released_webhooks_port),
    )
