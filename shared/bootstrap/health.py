"""Liveness, readiness and metrics of every process (the fixed contract in docs/operations.md).

- ``GET /healthz``: the process is alive and its event loop answers (always 200);
- ``GET /readyz``: 200 when every readiness check passes; otherwise 503 with
  ``{"status": "unready", "reason": "...", "reasons": [...]}`` naming what is unreachable
  (PostgreSQL, RabbitMQ, for consumers their queue);
- ``GET /metrics``: the Prometheus text exposition of the process.

Receivers and the admin service mount ``ops_routes`` on their own HTTP port; consumers and the
reconciler run an ``OpsServer`` on ``OPS_HOST:OPS_PORT``. Samplers refresh the gauges that come from
state rather than from events (queue depths, connections, dead letters) on a fixed interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import uvicorn
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from shared.infra import metrics
from shared.infra.errors import ConfigError
from shared.infra.logging import get_logger
from shared.infra.settings import OPS_PORT_DEFAULTS, InfraSettings

log = get_logger("ops.health")
# A readiness check: None when fine, else one line saying what is wrong.
Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT_S = 2.0


def database_check(pool: asyncpg.Pool) -> Check:
    async def check() -> str | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S), pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return f"postgresql unreachable: {type(exc).__name__}"
        return None

    return check


def broker_check(connection: AbstractRobustConnection) -> Check:
    async def check() -> str | None:
        if connection.is_closed or not connection.connected.is_set():
            return "rabbitmq unreachable: the connection is down (reconnecting)"
        return None

    return check


def queue_check(channel: AbstractChannel, queue: str, attached: Callable[[], bool]) -> Check:
    async def check() -> str | None:
        if channel.is_closed or not attached():
            return f"not attached to queue {queue}"
        return None

    return check


async def readiness(checks: Sequence[Check]) -> list[str]:
    """The reasons the process is not ready (empty: ready)."""
    found = await asyncio.gather(*(check() for check in checks))
    return [reason for reason in found if reason]


def ops_routes(checks: Callable[[Request], Sequence[Check]]) -> list[BaseRoute]:
    """The three routes; ``checks`` finds the process's checks (they live in lifespan state)."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            reasons = await readiness(checks(request))
        except Exception as exc:  # a probe answers, whatever happened
            reasons = [f"readiness check failed: {type(exc).__name__}"]
        if reasons:
            body = {"status": "unready", "reason": "; ".join(reasons), "reasons": reasons}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]


def ops_port(settings: InfraSettings, process: str) -> int:
    """OPS_PORT, or the process's local default when unset (0 lets the OS pick)."""
    return settings.ops_port if settings.ops_port is not None else OPS_PORT_DEFAULTS[process]


class OpsServer:
    """The ops routes of a process without an HTTP port, served by uvicorn in its event loop.

    ``checks`` is filled in by the process once its resources exist; until then it is not ready.
    ``port`` is the bound port once ``started`` is set (useful with port 0).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.checks: list[Check] = [_starting]
        self.started = asyncio.Event()
        app = Starlette(routes=ops_routes(lambda _request: self.checks))
        config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OpsServer:
        # Bound here, not by uvicorn (which exits the process on a bind error): a taken port
        # is one clear line from the process, like any other configuration problem.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"the ops server cannot listen on {self.host}:{self.port} ({exc.strerror}); "
                "set OPS_HOST / OPS_PORT"
            ) from None
        self.port = int(sock.getsockname()[1])
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="ops-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise ConfigError(f"the ops server on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.01)
        self.started.set()
        log.info("ops_server_started", host=self.host, port=self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)


async def _starting() -> str | None:
    return "starting"


async def sample_every(interval_s: float, sample: Callable[[], Awaitable[None]]) -> None:
    """Run ``sample`` now and every ``interval_s``; a failed sample is logged, never fatal."""
    while True:
        try:
            await sample()
        except Exception as exc:
            log.warning("metrics_sample_failed", error=f"{type(exc).__name__}: {exc}"[:200])
        await asyncio.sleep(interval_s)
