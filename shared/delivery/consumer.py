"""Consume change events: ack only after the handler's transaction commits.

For each message the handler runs inside one PostgreSQL transaction. Then:
- it returned: the transaction committed, the message is acked;
- otherwise the transaction rolled back and ``route`` (the one place failures are classified)
  decides (``shared.delivery.failures.route``):
  - ``retry`` (transient: timeouts, connection loss, 5xx, 429): the event is re-published to the
    retry ladder with ``attempt + 1`` (confirmed) and only then acked. The tier is the longer of the
    attempt's backoff step and the other side's Retry-After. Past ``max_attempts`` it is dead;
  - ``park`` (``ConnectionRevoked``: the connection is paused or its grant is dead): the event is
    stored in ``parked_events`` without spending an attempt, a dead grant pauses the connection
    ("needs re-authorisation"), and the message is acked; resuming republishes parked events;
  - ``dead`` (permanent, policy, unparseable): the failure is mirrored into ``dead_letters`` and
    the message is rejected without requeue, so the broker dead-letters it to ``sync.dead``.
Every failed attempt travels with the message (header ``x-history``) and lands in the dead
letter's ``history``. Nothing is lost and nothing loops hot.

Before and while the handler runs, the budget gate is asked whether the event's realm or company
is blocked by a 429 for longer than a short in-process wait; if so the event is deferred to the
ladder with its attempt unchanged (``shared.delivery.backpressure``), so one realm's storm never
holds the consumer's prefetch window against every other realm.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from shared.adapters.broker import EventPublisher, retry_exchange
from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository, event_as_json
from shared.delivery import parking
from shared.delivery.backpressure import MAX_IN_PROCESS_WAIT_S, BudgetGate, defer_delay
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
from shared.infra.db import DbConnection
from shared.infra.logging import bind_unit_of_work, get_logger

Handler = Callable[[ChangeEvent, DbConnection], Awaitable[None]]
Outcome = Literal["acked", "retry", "dead", "parked", "deferred"]

log = get_logger(__name__)


@dataclass
class EventConsumer:
    """Runs ``handler`` for every message of ``queue_name``."""

    pool: asyncpg.Pool
    publisher: EventPublisher
    queue_name: str
    handler: Handler
    max_attempts: int = 5
    retry_tiers: tuple[int, ...] = (5, 30, 300)
    # Asks whether the event's realm/company is blocked by a 429 (None: the budgets' own).
    gate: BudgetGate | None = None
    # How often a running handler is checked against the gate (only after a short wait).
    watch_s: float = 1.0
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
        if await self._deferred(message, event, await self._blocked_for(event)):
            return "deferred"
        task = asyncio.create_task(self._apply(event))
        try:
            blocked = await self._watch(task, event, started)
        except Exception as exc:  # the outermost boundary for one message: classify, never crash
            return await self._failed(message, event, exc, started)
        if blocked and await self._deferred(message, event, blocked):
            return "deferred"
        if blocked:  # could not defer (broker trouble): let the broker hand it back later
            await message.reject(requeue=True)
            return "retry"
        await message.ack()
        return "acked"

    async def _apply(self, event: ChangeEvent) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.handler(event, conn)

    async def _watch(self, task: asyncio.Task[None], event: ChangeEvent, started: float) -> float:
        """Await the handler; cancel it when it sits behind a long 429 block (the seconds left).

        Returns 0.0 when the handler finished (raising what it raised).
        """
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.watch_s)
                if done:
                    task.result()
                    return 0.0
                if time.perf_counter() - started < MAX_IN_PROCESS_WAIT_S:
                    continue
                blocked = await self._blocked_for(event)
                if blocked > MAX_IN_PROCESS_WAIT_S:
                    return await self._cancel(task, blocked)
        except asyncio.CancelledError:  # the consumer itself is stopping: take the handler along
            task.cancel()
            raise

    @staticmethod
    async def _cancel(task: asyncio.Task[None], blocked: float) -> float:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return blocked  # rolled back: the event is deferred, as if it never started
        return 0.0  # it finished just before the cancel landed: nothing to defer

    async def _blocked_for(self, event: ChangeEvent) -> float:
        if self.gate is None:
            self.gate = BudgetGate(self.pool)
        try:
            return await self.gate.blocked_for(event)
        except Exception:  # advice only: the handler copes with a blocked budget by waiting
            log.debug("budget_gate_failed", exc_info=True)
            return 0.0

    async def _deferred(
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

    async def _failed(
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
        await self._dead(message, event, exc, remedy=remedy)
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
