"""How every process of ours runs: an HTTP service under uvicorn, or a worker until a signal.

Settings are read once (a missing secret is one clear line and exit 1), logging is ours
(``log_config=None``), and PostgreSQL and RabbitMQ are checked first so a process whose
infrastructure is down exits with one line naming the URL instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette

from shared.adapters.broker import connect_broker
from shared.bootstrap.http_guard import uvicorn_config
from shared.infra.db import connect
from shared.infra.errors import ConfigError, InfraUnavailable
from shared.infra.logging import configure_logging
from shared.infra.settings import InfraSettings, load_settings

S = TypeVar("S", bound=InfraSettings)


async def check_infrastructure(settings: InfraSettings) -> None:
    conn = await connect(settings.database_url, timeout=5)
    await conn.close()
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
    try:
        async with connect_broker(settings.amqp_url, timeout=5):
            pass
    finally:
        logging.getLogger("aiormq.connection").setLevel(logging.NOTSET)


def serve(
    name: str,
    settings: InfraSettings,
    app: Starlette,
    host: str,
    port: int,
    *,
    needs_infrastructure: bool = True,
) -> int:
    configure_logging(settings.log_level, settings.log_format)
    try:
        if needs_infrastructure:
            asyncio.run(check_infrastructure(settings))
    except (ConfigError, InfraUnavailable) as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return 1
    uvicorn.Server(uvicorn_config(app, host, port, settings)).run()
    return 0


def serve_from_env(
    name: str,
    settings_class: type[S],
    build: Callable[[S], Starlette],
    address: Callable[[S], tuple[str, int]],
) -> int:
    """The whole ``__main__`` of an HTTP service: settings, one clear line on failure, serve."""
    try:
        settings = load_settings(settings_class)
    except ConfigError as exc:
        return fail_config(name, exc)
    host, port = address(settings)
    return serve(name, settings, build(settings), host, port)


def fail_config(name: str, exc: ConfigError) -> int:
    sys.stderr.write(f"{name}: {exc}\n")
    return 1


def run_worker(
    name: str,
    settings_class: type[S],
    work: Callable[[S, asyncio.Event], Awaitable[None]],
) -> int:
    """The whole ``__main__`` of a worker: settings, logging, infrastructure check, then ``work``
    until SIGINT or SIGTERM sets its stop event (it drains and returns)."""
    try:
        settings = load_settings(settings_class)
    except ConfigError as exc:
        return fail_config(name, exc)
    configure_logging(settings.log_level, settings.log_format)

    async def until_signalled() -> None:
        await check_infrastructure(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await work(settings, stop)

    try:
        asyncio.run(until_signalled())
    except (ConfigError, InfraUnavailable) as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return 1
    return 0
