"""Composition root of a consumer: one direction of the engine behind its two work queues.

Builds everything the engine and the consumer use (two pools, the broker connection and
publisher, the HTTP session and API clients, the PostgreSQL store of each message's transaction)
and hands it in; runs until told to stop, then drains the messages in hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shared.adapters.broker import (
    BULK_SUFFIX,
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
BULK_QUEUES: dict[Direction, str] = {d: q + BULK_SUFFIX for d, q in QUEUES.items()}
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

    Two lanes, each on its own channel and queue: live (webhooks, reconciliation, single replays)
    and bulk (an initial import, a bulk replay; ``BULK_SUFFIX``). Bulk has its own prefetch and
    API clients that leave ``bulk_reserved_share`` of every budget to live, so a company's import
    never delays its live changes: they neither queue behind it nor wait for its budget.

    With ``ops``, its readiness follows PostgreSQL, RabbitMQ and our attachment to the live queue,
    and both queues' depths are sampled for ``/metrics``."""
    lanes = (
        (QUEUES[direction], settings.amqp_prefetch, False),
        (BULK_QUEUES[direction], settings.bulk_prefetch, True),
    )
    # Two pools: each in-flight message holds one connection for its whole transaction, while
    # budgets, tokens and lookups borrow briefly from the other. One shared pool would let a
    # full prefetch window hold every connection and wait forever for one more.
    in_flight = settings.amqp_prefetch + settings.bulk_prefetch
    async with (
        create_pool(settings.database_url, max_size=in_flight + 1) as pool,
        create_pool(settings.database_url, max_size=settings.db_pool_max) as aux_pool,
        connect_broker(settings.amqp_url) as connection,
        outgoing_session() as session,
    ):
        publisher = await EventPublisher.open(connection)
        ledger = TwinLedger(aux_pool)
        running = []
        live_channel = None
        for queue_name, prefetch, bulk in lanes:
            channel = await connection.channel()
            await declare_topology(channel)
            await channel.set_qos(prefetch_count=prefetch)
            engine = SyncEngine(
                direction,
                connections=ConnectionLookup(aux_pool),
                clients=ClientFactory(settings, aux_pool, session, bulk=bulk),
                errors=PooledOutcomes(aux_pool),
            )
            consumer = EventConsumer(pool, publisher, queue_name, _handler(engine, ledger))
            if retry_tiers is not None:
                consumer.retry_tiers = retry_tiers
            queue, tag = await consumer.start(channel)
            running.append((consumer, queue, tag))
            live_channel = live_channel or channel
            log.info("consumer_started", direction=direction, queue=queue_name)
        attached = True
        sampler: asyncio.Task[None] | None = None
        if ops is not None and live_channel is not None:
            ops.checks = [
                database_check(pool),
                broker_check(connection),
                queue_check(live_channel, QUEUES[direction], lambda: attached),
            ]
            names = [name for name, _, _ in lanes]
            sampler = asyncio.create_task(
                sample_every(QUEUE_SAMPLE_S, lambda: sample_queues(connection, names))
            )
        await stop.wait()
        attached = False
        if sampler is not None:
            await cancel_quietly(sampler)
        for _, queue, tag in running:
            await queue.cancel(tag)
        drained = all([await consumer.drain(drain_s) for consumer, _, _ in running])
        await publisher.close()
        log.info("consumer_stopped", direction=direction, drained=drained)


def _handler(
    engine: SyncEngine, ledger: TwinLedger
) -> Callable[[ChangeEvent, DbConnection], Awaitable[None]]:
    async def handle(event: ChangeEvent, db: DbConnection) -> None:
        await engine.handle(event, PgSyncStore(db, ledger))

    return handle


def main(direction: Direction) -> int:
    """``python -m services.<direction>``."""

    async def work(settings: EngineSettings, stop: asyncio.Event) -> None:
        async with OpsServer(settings.ops_host, ops_port(settings, direction)) as ops:
            await run_consumer(settings, direction, stop, ops=ops)

    return run_worker(direction, EngineSettings, work)
