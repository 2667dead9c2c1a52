"""The outbox relay: publishes what the request path could not, and survives bad rows."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import QBO_TO_RELEASED, EventPublisher
from shared.adapters.postgres.inbox import PENDING, InboxEntry, InboxRepository
from shared.domain.events import ChangeEvent
from shared.ingest.dispatch import Dispatcher, cancel_quietly
from shared.ingest.marker import PublishedMarker
from shared.ingest.relay import OutboxRelay, relay_beside

pytestmark = pytest.mark.integration


class AlwaysUp:
    def available(self) -> bool:
        return True


def _events(prefix: str, account: str, count: int) -> list[ChangeEvent]:
    return [
        ChangeEvent(
            event_id=f"{prefix}-{account}-{n}",
            source="qbo",
            account_id=account,
            entity="invoice",
            entity_id=str(n),
            operation="update",
            occurred_at=datetime.now(UTC),
        )
        for n in range(count)
    ]


async def test_relay_publishes_pending_rows_and_sets_aside_undecodable_ones(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    account = f"relay-{uuid.uuid4().hex[:8]}"
    good = ChangeEvent(
        event_id=f"good-{account}",
        source="qbo",
        account_id=account,
        entity="invoice",
        entity_id="1",
        operation="update",
        occurred_at=datetime.now(UTC),
    )
    async with pool.acquire() as conn:
        await InboxRepository(conn).store([InboxEntry(good, PENDING)])
        await conn.execute(
            "INSERT INTO inbox (event_id, source, account_id, entity, entity_id, operation, "
            "routing_key, event) VALUES ($1, 'qbo', $2, 'invoice', '2', 'update', "
            "'qbo.invoice.update', $3)",
            f"bad-{account}",
            account,
            {"not": "a change event"},
        )
    publisher = await EventPublisher.open(broker)
    relay = OutboxRelay(pool, publisher, AlwaysUp())
    assert await relay.drain(0) == 1
    await publisher.close()
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, status, ignore_reason FROM inbox WHERE account_id = $1 "
            "ORDER BY event_id",
            account,
        )
    assert [(r["event_id"].split("-")[0], r["status"]) for r in rows] == [
        ("bad", "ignored"),
        ("good", "published"),
    ]
    assert rows[0]["ignore_reason"].startswith("undecodable")
    channel = await broker.channel()
    queue = await channel.get_queue(QBO_TO_RELEASED)
    message = await queue.get(no_ack=True)
    assert json.loads(message.body)["event_id"] == good.event_id


async def test_the_relay_says_when_nothing_old_is_left(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    """Issue 18: the dispatcher counts its overflow to the inbox as lag until the relay has
    published it; a pass cut short (the dispatcher got busy) must not say so."""
    account = f"relay-{uuid.uuid4().hex[:8]}"
    events = _events("r", account, 3)
    async with pool.acquire() as conn:
        await InboxRepository(conn).store([InboxEntry(e, PENDING) for e in events])
    publisher = await EventPublisher.open(broker)
    told: list[bool] = []
    quiet = iter([True, False])
    relay = OutboxRelay(
        pool,
        publisher,
        AlwaysUp(),
        page_size=2,
        quiet=lambda: next(quiet, True),
        caught_up=lambda: told.append(True),
    )
    await asyncio.sleep(0.01)
    assert await relay.drain(0.001) == 2  # one full page, then the dispatcher is busy
    assert told == []
    await relay.drain(0.001)
    assert told == [True]
    await publisher.close()


class Stalled:
    """A publisher whose publishes wait until released: the dispatcher's batch stays out."""

    def __init__(self, expect: int) -> None:
        self.release = asyncio.Event()
        self.all_out = asyncio.Event()  # ``expect`` publishes have started
        self._expect = expect

    async def publish(self, event: ChangeEvent) -> None:
        self._expect -= 1
        if self._expect <= 0:
            self.all_out.set()
        await self.release.wait()


async def _statuses(pool: asyncpg.Pool, account: str) -> dict[str, str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id, status FROM inbox WHERE account_id = $1", account)
    return {r["event_id"]: r["status"] for r in rows}


async def test_a_streams_overflow_is_relayed_while_the_dispatcher_publishes(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    """Issue 18: the relay waited for an idle dispatcher, which a stream never leaves, so what
    overflowed the dispatcher's queue waited for the stream to end (113,000 events of a 30 s
    stream). A receiver's relay now runs once nothing is queued, beside batches still out,
    and skips exactly the ids those batches hold."""
    account = f"relay-{uuid.uuid4().hex[:8]}"
    out, overflow = _events("out", account, 3), _events("over", account, 4)
    async with pool.acquire() as conn:
        await InboxRepository(conn).store([InboxEntry(e, PENDING) for e in out + overflow])
    stalled = Stalled(len(out))
    dispatcher = Dispatcher(stalled, AlwaysUp(), PublishedMarker(pool))
    dispatcher.submit(out)  # the overflow was stored but never queued: the relay's to publish
    running = asyncio.create_task(dispatcher.run())
    publisher = await EventPublisher.open(broker)
    try:
        await asyncio.wait_for(stalled.all_out.wait(), 10)
        assert not dispatcher.idle()  # a batch is out: the old relay would not have run
        told: list[bool] = []
        relay = relay_beside(dispatcher, pool, publisher, AlwaysUp())
        relay.caught_up = lambda: told.append(True)
        await relay.drain(0.001)
        statuses = await _statuses(pool, account)
        assert {i for i, s in statuses.items() if s == "published"} == {
            e.event_id for e in overflow
        }
        assert {i for i, s in statuses.items() if s == "pending"} == {e.event_id for e in out}
        assert told == [True]  # the overflow is out: the dispatcher's lag may clear
    finally:
        stalled.release.set()
        await cancel_quietly(running)
        await publisher.close()


async def test_a_page_the_dispatcher_holds_ends_the_pass(
    pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    """A full page of rows whose batch is still out publishes nothing and is not claimed
    again and again: the pass ends, and the dispatcher settles them."""
    account = f"relay-{uuid.uuid4().hex[:8]}"
    out = _events("held", account, 3)
    async with pool.acquire() as conn:
        await InboxRepository(conn).store([InboxEntry(e, PENDING) for e in out])
    stalled = Stalled(len(out))
    dispatcher = Dispatcher(stalled, AlwaysUp(), PublishedMarker(pool))
    dispatcher.submit(out)
    running = asyncio.create_task(dispatcher.run())
    publisher = await EventPublisher.open(broker)
    try:
        await asyncio.wait_for(stalled.all_out.wait(), 10)
        relay = relay_beside(dispatcher, pool, publisher, AlwaysUp())
        relay.page_size = 2
        # Other tests' rows may be pending too; ours come first only by age, so bound the
        # pass by time rather than by what it claims.
        await asyncio.wait_for(relay.drain(0.001, received_before=datetime.now(UTC)), 10)
        assert set((await _statuses(pool, account)).values()) == {"pending"}
    finally:
        stalled.release.set()
        await cancel_quietly(running)
        await publisher.close()
