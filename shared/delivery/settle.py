"""How a message ends when its handler did not simply succeed: the retry ladder, parking, the
dead-letter queue, or a deferral while its realm or company is blocked by a 429.

``failed`` acts on ``route`` (``shared.delivery.failures``, the one place failures are
classified); every failed attempt travels with the message (header ``x-history``) and lands in the
dead letter's ``history``. Nothing is lost and nothing loops hot.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from shared.adapters.broker import EventPublisher, retry_exchange
from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository, event_as_json
from shared.delivery import parking
from shared.delivery.backpressure import MAX_IN_PROCESS_WAIT_S, defer_delay
from shared.delivery.failures import (
    HISTORY_HEADER,
    MAX_HISTORY,
    attempt_entry,
    deferral_entry,
    history_of,
    retry_delay,
    route,
)
from shared.domain.errors import PermanentError, TransientError
from shared.domain.events import ChangeEvent
from shared.infra.logging import get_logger

Outcome = Literal["acked", "retry", "dead", "parked", "deferred"]

log = get_logger("shared.delivery.consumer")  # one logger name for the consumer's lines


@dataclass
class Settle:
    pool: asyncpg.Pool
    publisher: EventPublisher
    queue_name: str
    retry_tiers: tuple[int, ...]
    max_attempts: int

    async def deferred(
        self, message: AbstractIncomingMessage, event: ChangeEvent, blocked: float
    ) -> bool:
        """Send the event round the ladder, attempt unchanged, while its budget is blocked."""
        if blocked <= MAX_IN_PROCESS_WAIT_S:
            return False
        delay = defer_delay(blocked, self.retry_tiers)
        history = history_of(message)
        history.append(deferral_entry(event.attempt, blocked, delay))
        try:
            await self._to_ladder(event, delay, history)
        except Exception:  # the broker is struggling: handle it now instead
            log.warning("event_defer_failed", exc_info=True)
            return False
        await message.ack()
        log.info(
            "event_deferred",
            blocked_s=round(blocked, 1),
            delay_s=delay,
            source=event.source,
            account_id=event.account_id,
            connection_id=str(event.connection_id) if event.connection_id else None,
        )
        return True

    async def _to_ladder(
        self, event: ChangeEvent, delay: int, history: list[dict[str, Any]]
    ) -> None:
        await self.publisher.publish_bytes(
            retry_exchange(delay),
            event.routing_key,
            event.to_bytes(),
            # Jitter: up to 20 % earlier than the tier's queue TTL, so retries of a burst spread
            # out. Expiry happens at the head of the queue, so a message never waits more than
            # the tier itself.
            expiration=round(delay * random.uniform(0.8, 1.0), 3),  # noqa: S311 - not crypto
            message_id=event.event_id,
            headers={
                "x-attempt": event.attempt,
                "x-origin": event.origin,
                HISTORY_HEADER: json.dumps(history[-MAX_HISTORY:]),
            },
        )

    async def failed(
        self,
        message: AbstractIncomingMessage,
        event: ChangeEvent,
        exc: Exception,
        started: float,
    ) -> Outcome:
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        decision = route(exc)
        if decision == "park":
            parked = await self._park(message, event, exc, latency_ms)
            if parked is not None:
                return parked
            decision = "dead"  # nobody owns the event: nothing will ever resume it
        if decision == "retry" and event.attempt + 1 < self.max_attempts:
            return await self._retry(message, event, exc, latency_ms)
        remedy = exc.remedy if isinstance(exc, PermanentError) else None
        if decision == "retry":
            remedy = f"gave up after {event.attempt + 1} attempts; fix the cause, then replay"
        await self.dead(message, event, exc, remedy=remedy)
        return "dead"

    async def _retry(
        self, message: AbstractIncomingMessage, event: ChangeEvent, exc: Exception, latency: float
    ) -> Outcome:
        retry = event.model_copy(update={"attempt": event.attempt + 1})
        asked = exc.retry_after if isinstance(exc, TransientError) else None
        delay = retry_delay(retry.attempt, asked, self.retry_tiers)
        history = history_of(message)
        history.append(attempt_entry(event.attempt, "retry", exc, delay_s=delay))
        try:
            await self._to_ladder(retry, delay, history)
        except Exception:  # the broker is struggling; let it redeliver instead
            log.exception("retry_publish_failed", latency_ms=latency)
            await message.reject(requeue=True)
            return "retry"
        await message.ack()
        log.warning(
            "event_retry_scheduled",
            error_class=type(exc).__name__,
            error=str(exc),
            delay_s=delay,
            retry_after_s=asked,
            # The peer asked us to wait (429 or a Retry-After): the dashboard's 429 panel.
            rate_limited=asked is not None,
            source=event.source,
            account_id=event.account_id,
            connection_id=str(event.connection_id) if event.connection_id else None,
            latency_ms=latency,
        )
        return "retry"

    async def _park(
        self, message: AbstractIncomingMessage, event: ChangeEvent, exc: Exception, latency: float
    ) -> Outcome | None:
        taken_at = datetime.now(UTC) - timedelta(milliseconds=latency)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                parked = await parking.park(
                    conn,
                    event,
                    queue=self.queue_name,
                    routing_key=message.routing_key or "",
                    reason=f"{type(exc).__name__}: {exc}",
                )
                # Still active means the engine let it through and a client found the grant dead.
                paused_now = parked is not None and await parking.pause_for_reauthorisation(
                    conn, parked.connection_id, str(exc), unchanged_since=taken_at
                )
                # Read the status again: another event may have paused the connection since
                # ``park`` looked (concurrent failures), which is not a resume.
                status_now = (
                    await conn.fetchval(
                        "SELECT status FROM connections WHERE id = $1", parked.connection_id
                    )
                    if parked is not None
                    else None
                )
        except Exception:  # PostgreSQL is down: let the broker hand it back; nothing is burned
            log.exception("event_park_failed", latency_ms=latency)
            await asyncio.sleep(1.0)  # a redelivery loop while the database is down stays slow
            await message.reject(requeue=True)
            return "parked"
        if parked is None:
            return None
        await message.ack()
        log.warning(
            "event_parked",
            connection_id=str(parked.connection_id),
            connection_status="paused" if paused_now else parked.status,
            paused_now=paused_now,
            error_class=type(exc).__name__,
            error=str(exc),
            latency_ms=latency,
        )
        if status_now == "active" and not paused_now:
            await self._release_after_resume(parked.connection_id)
        return "parked"

    async def _release_after_resume(self, connection_id: UUID) -> None:
        """The connection was resumed while this event failed: its resume may have released the
        parked events before this one was parked, so release again rather than strand it."""
        try:
            await parking.release(self.pool, self.publisher, connection_id)
        except Exception:  # the next resume releases it; status shows it parked meanwhile
            log.exception("parked_release_failed", connection_id=str(connection_id))

    async def dead(
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
            history=tuple(history_of(message)),
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
            attempts=letter.attempts,
            exc_info=not isinstance(exc, PermanentError | ValidationError),
        )
