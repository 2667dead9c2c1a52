"""The consumer and the dead-letter table for the operations tests: a consumer running for a
block, polling until a condition holds, a dead letter by event id, dead letters seeded directly."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import QBO_TO_RELEASED
from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository
from shared.delivery.consumer import EventConsumer
from tests.integration.broker_helpers import make_event
from tests.support.waiting import eventually


class Running:
    """A consumer on the work queue for the duration of a ``with`` block."""

    def __init__(
        self, broker: AbstractRobustConnection, consumer: EventConsumer, prefetch: int = 4
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.prefetch = prefetch

    async def __aenter__(self) -> Running:
        self.channel = await self.broker.channel()
        await self.channel.set_qos(prefetch_count=self.prefetch)
        self.queue, self.tag = await self.consumer.start(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.cancel(self.tag)
        await self.consumer.drain(5)
        await self.channel.close()


async def wait_for(check: Any, timeout: float = 15.0) -> Any:
    """Poll ``check`` every 0.1 s until it returns something truthy (and return that)."""
    return await eventually(check, timeout, interval=0.1)


async def dead_letter(pool: asyncpg.Pool, event_id: str) -> asyncpg.Record | None:
    """The dead-letter row of ``event_id``, if it died."""
    async with pool.acquire() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM dead_letters WHERE event_id = $1", event_id
        )
        return row


async def seed_letters(pool: asyncpg.Pool, specs: list[dict[str, Any]]) -> uuid.UUID:
    """Dead letters for a fresh connection; each spec may set entity, error_class, age_h."""
    async with pool.acquire() as conn:
        connection_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id) VALUES ($1) RETURNING id",
            f"co-{uuid.uuid4().hex[:8]}",
        )
        repo = DeadLetterRepository(conn)
        for n, spec in enumerate(specs):
            event = make_event(300 + n, entity=spec.get("entity", "invoice"))
            letter_id = await repo.record(
                DeadLetter(
                    event_id=event.event_id,
                    routing_key=event.routing_key,
                    queue=QBO_TO_RELEASED,
                    event=event.model_dump(mode="json"),
                    error_class=spec.get("error_class", "PermanentError"),
                    error="seeded",
                    remedy=None,
                    attempts=1,
                    connection_id=str(connection_id),
                )
            )
            age = timedelta(hours=spec.get("age_h", 0))
            await conn.execute(
                "UPDATE dead_letters SET created_at = now() - $2::interval WHERE id = $1",
                letter_id,
                age,
            )
    return connection_id
