"""Consume change events: ack only after the handler's transaction commits.

For each message the handler runs inside one PostgreSQL transaction. Then:
- it returned: the transaction committed, the message is acked;
- it raised a transient error: the transaction rolled back, the event is re-published to the retry
  ladder with ``attempt + 1`` (confirmed) and only then acked; past ``max_attempts`` it is dead;
- it raised anything else, or the body is not a change event: the transaction rolled back, the
  failure is mirrored into ``dead_letters`` and the message is rejected without requeue, so the
  broker dead-letters it to ``sync.dead``. Nothing is lost and nothing loops hot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from shared.adapters.broker import EventPublisher, retry_exchange, retry_tier_for
from shared.adapters.dead_letters import DeadLetter, DeadLetterRepository, event_as_json
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection
from shared.infra.errors import PermanentError, TransientError
from shared.infra.logging import bind_unit_of_work, get_logger

Handler = Callable[[ChangeEvent, DbConnection], Awaitable[None]]
Outcome = Literal["acked", "retry", "dead"]

log = get_logger(__name__)

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    TimeoutError,
    ConnectionError,
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT_TYPES)


@dataclass
class EventConsumer:
    """Runs ``handler`` for every message of ``queue_name``."""

    pool: asyncpg.Pool
    publisher: EventPublisher
    queue_name: str
    handler: Handler
    max_attempts: int = 5
    retry_tiers: tuple[int, ...] = (5, 30, 300)
    _in_flight: int = field(default=0, init=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def start(self, channel: AbstractChannel) -> tuple[AbstractQueue, str]:
        queue = await channel.get_queue(self.queue_name, ensure=True)
        self._idle.set()
        tag = await queue.consume(self.on_message)
        return queue, tag

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait for in-flight messages to finish; True when the consumer went idle in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self.process(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def process(self, message: AbstractIncomingMessage) -> Outcome:
        started = time.perf_counter()
        try:
            event = ChangeEvent.from_bytes(message.body)
        except ValidationError as exc:
            bind_unit_of_work(queue=self.queue_name, message_id=message.message_id)
            await self._dead(message, None, exc, remedy="not a change event; inspect and purge")
            return "dead"
        bind_unit_of_work(
            event_id=event.event_id,
            queue=self.queue_name,
            entity=event.entity,
            entity_id=event.entity_id,
            operation=event.operation,
            attempt=event.attempt,
        )
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self.handler(event, conn)
        except Exception as exc:  # the outermost boundary for one message: classify, never crash
            return await self._failed(message, event, exc, started)
        await message.ack()
        return "acked"

    async def _failed(
        self,
        message: AbstractIncomingMessage,
        event: ChangeEvent,
        exc: Exception,
        started: float,
    ) -> Outcome:
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        if is_transient(exc) and event.attempt + 1 < self.max_attempts:
            retry = event.model_copy(update={"attempt": event.attempt + 1})
            delay = retry_tier_for(retry.attempt, self.retry_tiers)
            try:
                await self.publisher.publish(retry, exchange=retry_exchange(delay))
            except Exception:  # the broker is struggling; let it redeliver instead
                log.exception("retry_publish_failed", latency_ms=latency_ms)
                await message.reject(requeue=True)
                return "retry"
            await message.ack()
            log.warning(
                "event_retry_scheduled",
                error_class=type(exc).__name__,
                error=str(exc),
                delay_s=delay,
                latency_ms=latency_ms,
            )
            return "retry"
        remedy = exc.remedy if isinstance(exc, PermanentError) else None
        await self._dead(message, event, exc, remedy=remedy)
        return "dead"

    async def _dead(
        self,
        message: AbstractIncomingMessage,
        event: ChangeEvent | None,
        exc: Exception,
        *,
        remedy: str | None,
    ) -> None:
        letter = DeadLetter(
            event_id=event.event_id if event else (message.message_id or "unparseable"),
            routing_key=message.routing_key or "",
            queue=self.queue_name,
            event=event_as_json(message.body),
            error_class=type(exc).__name__,
            error=str(exc)[:2000],
            remedy=remedy,
            attempts=(event.attempt + 1) if event else 1,
            connection_id=str(event.connection_id) if event and event.connection_id else None,
        )
        try:
            async with self.pool.acquire() as conn:
                await DeadLetterRepository(conn).record(letter)
        except Exception:  # the message itself still reaches sync.dead below
            log.exception("dead_letter_record_failed")
        await message.reject(requeue=False)
        log.error(
            "event_dead_lettered",
            error_class=letter.error_class,
            error=letter.error,
            remedy=remedy,
            exc_info=not isinstance(exc, PermanentError | ValidationError),
        )
