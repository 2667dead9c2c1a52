"""A consumer process: one direction of the engine behind one work queue."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp

from shared.adapters.broker import (
    QBO_TO_RELEASED,
    RELEASED_TO_QBO,
    EventPublisher,
    connect_broker,
    declare_topology,
)
from shared.adapters.clients import ClientFactory
from shared.adapters.postgres.connections import ConnectionLookup
from shared.adapters.postgres.sync_store import PgSyncStore, PooledOutcomes
from shared.adapters.postgres.twins import TwinLedger
from shared.bootstrap.serve import check_infrastructure, fail_config
from shared.delivery.consumer import EventConsumer
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection, create_pool
from shared.infra.errors import ConfigError, InfraUnavailable
from shared.infra.logging import configure_logging, get_logger
from shared.infra.settings import EngineSettings, load_settings
from shared.sync.engine import Direction, SyncEngine

QUEUES: dict[Direction, str] = {
    "qbo_to_released": QBO_TO_RELEASED,
    "released_to_qbo": RELEASED_TO_QBO,
}
log = get_logger("consumer")


async def run_consumer(
    settings: EngineSettings,
    direction: Direction,
    stop: asyncio.Event,
    *,
    retry_tiers: tuple[int, ...] | None = None,
    drain_s: float = 20.0,
) -> None:
    """Consume until ``stop`` is set, then stop taking messages and finish the ones in hand."""
    # Two pools: each in-flight message holds one connection for its whole transaction, while
    # budgets, tokens and lookups borrow briefly from the other. One shared pool would let a
    # full prefetch window hold every connection and wait forever for one more.
    async with (
        create_pool(settings.database_url, max_size=settings.amqp_prefetch + 1) as pool,
        create_pool(settings.database_url, max_size=settings.db_pool_max) as aux_pool,
        connect_broker(settings.amqp_url) as connection,
        aiohttp.ClientSession() as session,
    ):
        channel = await connection.channel()
        await declare_topology(channel)
        await channel.set_qos(prefetch_count=settings.amqp_prefetch)
        publisher = await EventPublisher.open(connection)
        engine = SyncEngine(
            direction,
            connections=ConnectionLookup(aux_pool),
            clients=ClientFactory(settings, aux_pool, session),
            errors=PooledOutcomes(aux_pool),
        )
        ledger = TwinLedger(aux_pool)

        async def handle(event: ChangeEvent, db: DbConnection) -> None:
            await engine.handle(event, PgSyncStore(db, ledger))

        consumer = EventConsumer(pool, publisher, QUEUES[direction], handle)
        if retry_tiers is not None:
            consumer.retry_tiers = retry_tiers
        queue, tag = await consumer.start(channel)
        log.info("consumer_started", direction=direction, queue=QUEUES[direction])
        await stop.wait()
        await queue.cancel(tag)
        drained = await consumer.drain(drain_s)
        await publisher.close()
        log.info("consumer_stopped", direction=direction, drained=drained)


async def _run_until_signalled(settings: EngineSettings, direction: Direction) -> None:
    await check_infrastructure(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_consumer(settings, direction, stop)


def consumer_main(direction: Direction) -> int:
    """Entrypoint body of ``python -m services.<direction>``."""
    try:
        settings = load_settings(EngineSettings)
    except ConfigError as exc:
        return fail_config(direction, exc)
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_run_until_signalled(settings, direction))
    except (ConfigError, InfraUnavailable) as exc:
        sys.stderr.write(f"{direction}: {exc}\n")
        return 1
    return 0
