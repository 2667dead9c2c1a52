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
How a failed or blocked message ends is ``shared.delivery.settle``.

Before and while the handler runs, the budget gate is asked whether the event's realm or company
is blocked by a 429 for longer than a short in-process wait; if so the event is deferred to the
ladder with its attempt unchanged (``shared.delivery.backpressure``), so one realm's storm never
holds the consumer's prefetch window against every other realm. An event whose record an import
batch holds (``RecordHeld``: it may keep it for seconds) is deferred the same way, at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from shared.adapters.broker import EventPublisher
from shared.delivery.backpressure import HELD_BLOCK_S, MAX_IN_PROCESS_WAIT_S, BudgetGate
from shared.delivery.settle import Outcome, Settle
from shared.domain.errors import RecordHeld
from shared.domain.events import ChangeEvent
from shared.infra import metrics
from shared.infra.db import DbConnection
from shared.infra.logging import bind_unit_of_work, get_logger

Handler = Callable[[ChangeEvent, DbConnection], Awaitable[None]]

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
        result = await self._process(message, started)
        metrics.HANDLER.labels(self.queue_name, result).observe(time.perf_counter() - started)
        return result

    async def _process(self, message: AbstractIncomingMessage, started: float) -> Outcome:
        try:
            event = ChangeEvent.from_bytes(message.body)
        except ValidationError as exc:
            bind_unit_of_work(queue=self.queue_name, message_id=message.message_id)
            await self._settle().dead(
                message, None, exc, remedy="not a change event; inspect and purge"
            )
            metrics.FAILURES.labels(self.queue_name, "dead", type(exc).__name__).inc()
            return "dead"
        bind_unit_of_work(
            event_id=event.event_id,
            queue=self.queue_name,
            entity=event.entity,
            entity_id=event.entity_id,
            operation=event.operation,
            attempt=event.attempt,
        )
        if await self._settle().deferred(message, event, await self._blocked_for(event)):
            return "deferred"
        task = asyncio.create_task(self._apply(event))
        try:
            blocked = await self._watch(task, event, started)
        except RecordHeld:  # not the event's failure: it comes back shortly, attempt unchanged
            blocked = HELD_BLOCK_S
        except Exception as exc:  # the outermost boundary for one message: classify, never crash
            ended = await self._settle().failed(message, event, exc, started)
            metrics.FAILURES.labels(self.queue_name, ended, type(exc).__name__).inc()
            return ended
        if blocked and await self._settle().deferred(message, event, blocked):
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

    def _settle(self) -> Settle:
        """The consumer's settings as they are now (tests and wiring adjust them after init)."""
        return Settle(
            self.pool, self.publisher, self.queue_name, self.retry_tiers, self.max_attempts
        )
