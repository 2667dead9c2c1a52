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
from shared.ingest.relay import OutboxRelay

pytestmark = pytest.mark.integration


class AlwaysUp:
    def available(self) -> bool:
        return True


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
    events = [
        ChangeEvent(
            event_id=f"r-{account}-{n}",
            source="qbo",
            account_id=account,
            entity="invoice",
            entity_id=str(n),
            operation="update",
            occurred_at=datetime.now(UTC),
        )
        for n in range(3)
    ]
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
