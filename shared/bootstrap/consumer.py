"""Composition root of a consumer: one direction of the engine behind one work queue.

Builds everything the engine and the consumer use (two pools, the broker connection and
publisher, the HTTP session and API clients, the PostgreSQL store of each message's transaction)
and hands it in; runs until told to stop, then drains the messages in hand.
"""

from __future__ import annotations

import asyncio

from shared.adapters.broker import (
    QBO_TO_RELEASED,
    RELEASED_TO_QBO,
    EventPublisher,
    connect_broker,
    declare_topology,
)
from shared.adapters.clients import ClientFactory
from shared.adapters.http.session import outgoing_session
from shared.adapters.postgres.connections import ConnectionLookup
from shared.adapters.postgres.sync_store import PgSyncStore, PooledOutcomes
from shared.adapters.postgres.twins import TwinLedger
from shared.bootstrap.health import (
    OpsServer,
    broker_check,
    database_check,
    ops_port,
    queue_check,
    sample_every,
)
from shared.bootstrap.serve import run_worker
from shared.delivery.consumer import EventConsumer
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection, create_pool
from shared.infra.logging import get_logger
from shared.infra.settings import EngineSettings
from shared.ingest.dispatch import cancel_quietly
from shared.ops.gauges import sample_queues
from shared.sync.engine import Direction, SyncEngine

QUEUES: dict[Direction, str] = {
    "qbo_to_released": QBO_TO_RELEASED,
    "released_to_qbo": RELEASED_TO_QBO,
}
log = get_logger("consumer")
QUEUE_SAMPLE_S = 15.0


async def run_consumer(
    settings: EngineSettings,
    direction: Direction,
    stop: asyncio.Event,
    *,
    retry_tiers: tuple[int, ...] | None = None,
    drain_s: float = 20.0,
    ops: OpsServer | None = None,
) -> None:
    """Consume until ``stop`` is set, then stop taking messages and finish the ones in hand.

    With ``ops``, its readiness follows PostgreSQL, RabbitMQ and our attachment to the queue, and
    the queue's depth is sampled for ``/metrics``."""
    # Two pools: each in-flight message holds one connection for its whole transaction, while
    # budgets, tokens and lookups borrow briefly from the other. One shared pool would let a
    # full prefetch window hold every connection and wait forever for one more.
    async with (
        create_pool(settings.database_url, max_size=settings.amqp_prefetch + 1) as pool,
        create_pool(settings.database_url, max_size=settings.db_pool_max) as aux_pool,
        connect_broker(settings.amqp_url) as connection,
        outgoing_session() as session,
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
        attached = True
        sampler: asyncio.Task[None] | None = None
        if ops is not None:
            ops.checks = [
                database_check(pool),
                broker_check(connection),
                queue_check(channel, QUEUES[direction], lambda: attached),
            ]
            names = [QUEUES[direction]]
            sampler = asyncio.create_task(
                sample_every(QUEUE_SAMPLE_S, lambda: sample_queues(connection, names))
            )
        log.info("consumer_started", direction=direction, queue=QUEUES[direction])
        await stop.wait()
        attached = False
        if sampler is not None:
            await cancel_quietly(sampler)
        await queue.cancel(tag)
        drained = await consumer.drain(drain_s)
        await publisher.close()
        log.info("consumer_stopped", direction=direction, drained=drained)


def main(direction: Direction) -> int:
    """``python -m services.<direction>``."""

    async def work(settings: EngineSettings, stop: asyncio.Event) -> None:
        async with OpsServer(settings.ops_host, ops_port(settings, direction)) as ops:
            await run_consumer(settings, direction, stop, ops=ops)

    return run_worker(direction, EngineSettings, work)
