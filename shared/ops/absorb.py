"""Absorb ``sync.dead`` into ``dead_letters``: no dead message stays invisible to ``dlq list``.

The consumer mirrors every failure it sees before rejecting. One kind it never sees: a message
that crashed its consumer before any ack until the work queue's delivery limit dead-lettered it.
``absorb`` drains ``sync.dead``; a message that already has its row is simply acked (the row is
the operational record), one that has none gets a row built from the broker's ``x-death`` header,
then is acked. Each row is committed before its message is acked, so nothing is lost in between.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.adapters.broker import DEAD_QUEUE
from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository, event_as_json
from shared.delivery.failures import history_of
from shared.infra.logging import get_logger

log = get_logger("ops.dead_queue")

_CLASS_FOR_REASON = {
    "delivery_limit": "DeliveryLimitExceeded",
    "rejected": "Rejected",
    "expired": "Expired",
    "maxlen": "QueueOverflow",
}


def _death(message: AbstractIncomingMessage) -> dict[str, Any]:
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return deaths[0]
    return {}


def _text(value: Any, default: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value) if value is not None else default


def letter_for(message: AbstractIncomingMessage) -> DeadLetter:
    """What we know of a dead message the consumer never mirrored."""
    death = _death(message)
    event = event_as_json(message.body)
    reason = _text(death.get("reason"), "unknown")
    queue = _text(death.get("queue"), "unknown")
    count = int(death.get("count") or 1)
    event_id = message.message_id or str(event.get("event_id") or "unidentified")
    return DeadLetter(
        event_id=event_id,
        routing_key=message.routing_key or "",
        queue=queue,
        event=event,
        error_class=_CLASS_FOR_REASON.get(reason, "DeadLettered"),
        error=f"dead-lettered by the broker from {queue}: {reason}",
        remedy=(
            "the consumer stopped before finishing this message repeatedly (a crash or a kill); "
            "check the consumer's logs for this event_id before replaying"
        ),
        attempts=count,
        connection_id=str(event["connection_id"]) if event.get("connection_id") else None,
        history=tuple(history_of(message)),
    )


async def absorb(pool: asyncpg.Pool, channel: AbstractChannel, limit: int = 1000) -> int:
    """Drain up to ``limit`` messages from ``sync.dead``; how many rows it had to create."""
    queue = await channel.get_queue(DEAD_QUEUE, ensure=False)
    created = 0
    for _ in range(limit):
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        letter = letter_for(message)
        async with pool.acquire() as conn:
            repo = DeadLetterRepository(conn)
            mirrored = await repo.get(letter.event_id, letter.queue)
            if mirrored is None:
                await repo.record(letter)
                created += 1
                log.warning(
                    "dead_letter_absorbed",
                    event_id=letter.event_id,
                    queue=letter.queue,
                    error_class=letter.error_class,
                )
        await message.ack()
    return created
