"""Events and queues for the broker and operations tests: a ready-made event, one message off a
queue, a queue's depth."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.domain.events import ChangeEvent


def make_event(n: int = 1, **changes: Any) -> ChangeEvent:
    """A QBO invoice update numbered ``n`` (its event id unique per call), with ``changes``."""
    base: dict[str, Any] = {
        "event_id": f"evt-{n}-{datetime.now(UTC).timestamp()}",
        "source": "qbo",
        "account_id": "9130",
        "entity": "invoice",
        "entity_id": str(n),
        "operation": "update",
        "occurred_at": datetime.now(UTC),
    }
    base.update(changes)
    return ChangeEvent(**base)


async def get_one(
    broker: AbstractRobustConnection, queue_name: str, timeout: float = 10.0
) -> AbstractIncomingMessage:
    """The next message on ``queue_name`` (acknowledged on receipt), or fail after ``timeout``."""
    channel = await broker.channel()
    queue = await channel.get_queue(queue_name)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing arrived on {queue_name} within {timeout}s")
        await asyncio.sleep(0.05)


async def queue_depth(broker: AbstractRobustConnection, name: str) -> int:
    """How many messages wait on queue ``name``."""
    channel = await broker.channel()
    declared = await channel.declare_queue(name, passive=True)
    await channel.close()
    count = declared.declaration_result.message_count
    return int(count or 0)
