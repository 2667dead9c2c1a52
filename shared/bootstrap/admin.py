"""Composition root of the admin service: its resources in the lifespan (pool, HTTP session, the
QBO connect flow, the demo connection), handed to the routes of ``shared.admin`` as typed state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware

from shared.adapters.broker import connect_broker
from shared.adapters.clients import ClientFactory
from shared.adapters.postgres.budgets import ApiBudget
from shared.admin.api import routes
from shared.admin.connect import ConnectFlow
from shared.admin.console import ConsoleGate, console_routes
from shared.admin.console.session import Sessions
from shared.admin.context import AdminContext, AdminState, OpsContext, admin_state
from shared.admin.demo import DemoConnection
from shared.admin.http import RequestLog, RequireAdminToken
from shared.admin.ops_api import ops_routes
from shared.admin.results_api import results_routes
from shared.admin.settings import AdminServiceSettings
from shared.admin.store import AdminConnections
from shared.bootstrap.health import (
    CHECK_TIMEOUT_S,
    Check,
    database_check,
    sample_every,
)
from shared.bootstrap.health import ops_routes as health_routes
from shared.bootstrap.serve import serve_from_env
from shared.infra.db import create_pool
from shared.infra.errors import InfraUnavailable
from shared.infra.logging import get_logger
from shared.infra.request_limits import BodyLimit, InputGuard
from shared.ops.gauges import sample_queues, sample_state
from shared.ops.replay import Throttle
from shared.ops.replay_batched import BatchedReplay
from shared.ops.status import queue_names

log = get_logger("admin")
SAMPLER_STOP_S = 5.0


async def _run_demo(demo: DemoConnection) -> None:
    try:
        await demo.run()
    except Exception:
        # The demo is a convenience: it must never take the admin API down with it.
        log.exception("demo_connection_failed")


def reachable_broker(amqp_url: str) -> Check:
    """The admin service publishes over short-lived connections: ready when one opens."""

    async def check() -> str | None:
        try:
            async with connect_broker(amqp_url, timeout=CHECK_TIMEOUT_S):
                return None
        except InfraUnavailable:
            return "rabbitmq unreachable"

    return check


async def _sample(
    settings: AdminServiceSettings, pool: asyncpg.Pool, budgets: dict[str, ApiBudget]
) -> None:
    await sample_state(pool, budgets)
    async with connect_broker(settings.amqp_url, timeout=CHECK_TIMEOUT_S) as broker:
        await sample_queues(broker, queue_names())


def create_app(settings: AdminServiceSettings) -> Starlette:
    sessions = Sessions(
        settings.admin_token.get_secret_value(),
        ttl_s=settings.console_session_ttl_s,
        secure=settings.admin_public_url.startswith("https://"),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AdminState]:
        async with (
            create_pool(
                settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
            ) as pool,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        ):
            connections = AdminConnections(pool)
            flow = ConnectFlow(settings, pool, ClientFactory(settings, pool, http), http)
            demo_task: asyncio.Task[None] | None = None
            if settings.demo_connection:
                demo = DemoConnection(settings, connections, flow, http)
                demo_task = asyncio.create_task(_run_demo(demo), name="admin-demo-connection")
            # Exposed so a caller (tests, a readiness probe) can wait for the demo to settle.
            app.state.demo_task = demo_task
            factory = ClientFactory(settings, pool, http)
            budgets = {"qbo": factory.qbo_budget, "released": factory.released_budget}
            sampler = asyncio.create_task(
                sample_every(settings.metrics_sample_s, lambda: _sample(settings, pool, budgets)),
                name="admin-metrics-sampler",
            )
            try:
                yield {
                    "admin": AdminContext(pool, connections, flow, settings),
                    "ops": OpsContext(
                        pool,
                        settings.amqp_url,
                        Throttle(settings.replay_rate_per_minute),
                        # Bulk replays write what they can in batches, on the bulk budgets.
                        BatchedReplay(pool, ClientFactory(settings, pool, http, bulk=True)),
                    ),
                    "demo_task": demo_task,
                    "checks": [database_check(pool), reachable_broker(settings.amqp_url)],
                    "budgets": budgets,
                }
            finally:
                # A sample caught mid-way through a broker handshake may take long to unwind:
                # shutting down never waits on it for more than a few seconds.
                sampler.cancel()
                await asyncio.wait({sampler}, timeout=SAMPLER_STOP_S)
                if demo_task is not None:
                    demo_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await demo_task

    return Starlette(
        routes=[
            *routes(),
            *ops_routes(),
            *results_routes(),
            *health_routes(lambda request: admin_state(request)["checks"]),
            *console_routes(sessions),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(RequestLog),
            Middleware(BodyLimit, max_bytes=settings.admin_max_body_bytes),
            Middleware(ConsoleGate, sessions=sessions),
            Middleware(RequireAdminToken, token=settings.admin_token.get_secret_value()),
            Middleware(InputGuard),
        ],
    )


def main() -> int:
    """``python -m services.admin``."""
    return serve_from_env(
        "admin", AdminServiceSettings, create_app, lambda s: (s.admin_host, s.admin_port)
    )
