"""Publisher confirms, mandatory routing, and the consumer's ack-after-commit contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import (
    DEAD_QUEUE,
    EVENTS_EXCHANGE,
    QBO_TO_RELEASED,
    EventPublisher,
    UnroutableError,
    connect_broker,
)
from shared.delivery.consumer import EventConsumer
from shared.domain.errors import PermanentError, TransientError
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection
from tests.conftest import TEST_TOPOLOGY
from tests.integration.broker_helpers import get_one, make_event, queue_depth

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(broker: AbstractRobustConnection) -> AsyncIterator[EventPublisher]:
    pub = await EventPublisher.open(broker)
    yield pub
    await pub.close()


@pytest.fixture
async def scratch_table(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A table the handlers write to; its unique key is checked only at commit."""
    name = "scratch_effects"
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.execute(
            f"CREATE TABLE {name} (event_id text, marker text, "
            "CONSTRAINT scratch_once UNIQUE (marker) DEFERRABLE INITIALLY DEFERRED)"
        )
    yield name
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")


async def run_consumer(
    broker: AbstractRobustConnection, consumer: EventConsumer, until: asyncio.Event
) -> None:
    channel = await broker.channel()
    await channel.set_qos(prefetch_count=4)
    queue, tag = await consumer.start(channel)
    try:
        await asyncio.wait_for(until.wait(), 15)
    finally:
        await queue.cancel(tag)
        await consumer.drain(5)
        await channel.close()


async def test_publish_consume_ack_round_trip(
    broker: AbstractRobustConnection,
    publisher: EventPublisher,
    pool: asyncpg.Pool,
    scratch_table: str,
) -> None:
    event = make_event(1)
    await publisher.publish(event)
    done = asyncio.Event()

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        await conn.execute(f"INSERT INTO {scratch_table} VALUES ($1, $2)", evt.event_id, "a")
        done.set()

    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler)
    await run_consumer(broker, consumer, done)
    await asyncio.sleep(0.3)
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT event_id FROM {scratch_table}")
    assert [r["event_id"] for r in rows] == [event.event_id]
    assert await queue_depth(broker, QBO_TO_RELEASED) == 0
    assert await queue_depth(broker, DEAD_QUEUE) == 0


async def test_unroutable_publish_is_an_error(publisher: EventPublisher) -> None:
    with pytest.raises(UnroutableError):
        await publisher.publish_bytes(EVENTS_EXCHANGE, "nobody.listens.here", b"{}")


async def test_failing_handler_dead_letters_once_without_looping(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    event = make_event(2)
    await publisher.publish(event)
    calls = 0
    done = asyncio.Event()

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        nonlocal calls
        calls += 1
        done.set()
        raise PermanentError("no account mapping for line 1", remedy="link the account")

    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler)
    await run_consumer(broker, consumer, done)
    dead = await get_one(broker, DEAD_QUEUE)
    assert ChangeEvent.from_bytes(dead.body).event_id == event.event_id
    await asyncio.sleep(0.5)
    assert calls == 1, "a permanent failure must not be retried"
    assert await queue_depth(broker, QBO_TO_RELEASED) == 0
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT error_class, remedy, status FROM dead_letters WHERE event_id = $1",
            event.event_id,
        )
    assert row is not None
    assert (row["error_class"], row["remedy"], row["status"]) == (
        "PermanentError",
        "link the account",
        "dead",
    )


async def test_rolled_back_transaction_is_not_acked(
    broker: AbstractRobustConnection,
    publisher: EventPublisher,
    pool: asyncpg.Pool,
    scratch_table: str,
) -> None:
    """The handler's writes succeed but the COMMIT fails: the message must not be acked."""
    async with pool.acquire() as conn:
        await conn.execute(f"INSERT INTO {scratch_table} VALUES ('seed', 'taken')")
    event = make_event(3)
    await publisher.publish(event)
    done = asyncio.Event()

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        # Deferred constraint: this insert "works" and fails only at commit time.
        await conn.execute(f"INSERT INTO {scratch_table} VALUES ($1, 'taken')", evt.event_id)
        done.set()

    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler)
    await run_consumer(broker, consumer, done)
    dead = await get_one(broker, DEAD_QUEUE)
    assert ChangeEvent.from_bytes(dead.body).event_id == event.event_id
    async with pool.acquire() as conn:
        count = await conn.fetchval(
            f"SELECT count(*) FROM {scratch_table} WHERE event_id = $1", event.event_id
        )
    assert count == 0


async def test_transient_failure_retries_through_the_ladder(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    event = make_event(4)
    await publisher.publish(event)
    attempts: list[int] = []
    done = asyncio.Event()

    seen_at: list[float] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        attempts.append(evt.attempt)
        seen_at.append(asyncio.get_running_loop().time())
        if evt.attempt == 0:
            raise TransientError("QBO answered 503")
        done.set()

    consumer = EventConsumer(
        pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=TEST_TOPOLOGY.retry_tiers
    )
    await run_consumer(broker, consumer, done)
    assert attempts == [0, 1]
    assert await queue_depth(broker, DEAD_QUEUE) == 0
    # The 1 s tier with jitter: at most 20 % earlier than the tier (upper bound leaves room
    # for delivery under load; it is not a performance check).
    assert 0.7 <= seen_at[1] - seen_at[0] <= 3.0


async def test_database_restart_under_a_handler_retries_instead_of_dead_lettering(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    """PostgreSQL closing the handler's connection mid-transaction (as a restart does) makes
    asyncpg's rollback raise InterfaceError over the real cause; bench_faults found such events
    dead-lettered after a PostgreSQL restart."""
    event = make_event(6)
    await publisher.publish(event)
    attempts: list[int] = []
    done = asyncio.Event()

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        attempts.append(evt.attempt)
        if evt.attempt == 0:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        done.set()

    consumer = EventConsumer(
        pool, publisher, QBO_TO_RELEASED, handler, retry_tiers=TEST_TOPOLOGY.retry_tiers
    )
    await run_consumer(broker, consumer, done)
    assert attempts == [0, 1]
    assert await queue_depth(broker, DEAD_QUEUE) == 0


async def test_transient_failures_are_bounded(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    event = make_event(5)
    await publisher.publish(event)
    attempts: list[int] = []

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        attempts.append(evt.attempt)
        raise TransientError("still down")

    consumer = EventConsumer(
        pool,
        publisher,
        QBO_TO_RELEASED,
        handler,
        max_attempts=2,
        retry_tiers=TEST_TOPOLOGY.retry_tiers,
    )
    never = asyncio.Event()
    task = asyncio.create_task(run_consumer(broker, consumer, never))
    dead = await get_one(broker, DEAD_QUEUE, timeout=15)
    never.set()
    await task
    assert attempts == [0, 1]
    assert ChangeEvent.from_bytes(dead.body).attempt == 1


async def test_malformed_message_is_dead_lettered(
    broker: AbstractRobustConnection, publisher: EventPublisher, pool: asyncpg.Pool
) -> None:
    await publisher.publish_bytes(
        EVENTS_EXCHANGE, "qbo.invoice.update", b"not json", message_id="junk-1"
    )

    async def handler(evt: ChangeEvent, conn: DbConnection) -> None:
        raise AssertionError("must not be called")

    consumer = EventConsumer(pool, publisher, QBO_TO_RELEASED, handler)
    never = asyncio.Event()
    task = asyncio.create_task(run_consumer(broker, consumer, never))
    dead = await get_one(broker, DEAD_QUEUE)
    never.set()
    await task
    assert dead.body == b"not json"
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT error_class FROM dead_letters WHERE event_id = 'junk-1'")
    assert row is not None
    assert row["error_class"] == "ValidationError"


async def test_crashing_consumer_hits_the_delivery_limit(
    broker: AbstractRobustConnection, publisher: EventPublisher, amqp_url: str
) -> None:
    """A message whose consumer dies before acking is redelivered, but not forever."""
    event = make_event(6)
    await publisher.publish(event)
    deliveries = 0
    for _ in range(TEST_TOPOLOGY.delivery_limit + 2):
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        queue = await channel.get_queue(QBO_TO_RELEASED)
        message = await queue.get(fail=False)
        if message is not None:
            deliveries += 1
        await connection.close()  # dies without ack: the broker counts a failed delivery
        await asyncio.sleep(0.1)
    dead = await get_one(broker, DEAD_QUEUE)
    assert ChangeEvent.from_bytes(dead.body).event_id == event.event_id
    assert deliveries == TEST_TOPOLOGY.delivery_limit + 1


def _robust_tasks() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "connection_factory" in repr(task.get_coro())
    ]


async def test_a_connect_cancelled_half_way_leaves_no_reconnect_task_behind() -> None:
    """A readiness probe or a shutdown that gives up on a slow broker must not leak its connection:
    aio-pika's own ``connect_robust`` left the reconnect loop running, which later died with the
    test's event loop as an 'Event loop is closed' error in an unrelated test."""
    accepted: list[asyncio.StreamWriter] = []
    reached = asyncio.Event()

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept the socket and never answer the AMQP handshake
        reached.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:

        async def attempt() -> None:
            async with connect_broker(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=30):
                pass

        task = asyncio.create_task(attempt())
        await asyncio.wait_for(reached.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert _robust_tasks() == []
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
