"""Publishes committed inbox events right after the webhook is answered.

The inbox commit is what makes an event durable; publishing is the outbox step. Doing it here,
just behind the response, keeps QBO's 3-second budget and our latency independent of the broker's
confirm time. Anything this dispatcher cannot publish (broker down, backlog full, process killed)
stays ``pending`` in the inbox and the relay publishes it later, so nothing depends on memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from shared.adapters.postgres.inbox import InboxRepository
from shared.domain.events import ChangeEvent
from shared.infra.logging import get_logger

log = get_logger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Publisher(Protocol):
    async def publish(self, event: ChangeEvent) -> None: ...


class BrokerGate(Protocol):
    """Tells whether publishing is worth trying right now (the broker link is up)."""

    def available(self) -> bool: ...


class PublishedMarker:
    """Collects confirmed event ids and marks them published in batches."""

    def __init__(self, pool: asyncpg.Pool, *, interval_s: float = 0.2) -> None:
        self._pool = pool
        self._interval = interval_s
        self._ids: list[str] = []
        self._wake = asyncio.Event()

    def add(self, event_ids: Sequence[str]) -> None:
        self._ids.extend(event_ids)
        if len(self._ids) >= 500:
            self._wake.set()

    async def flush(self) -> None:
        batch, self._ids = self._ids, []
        if not batch:
            return
        try:
            async with self._pool.acquire() as conn:
                await InboxRepository(conn).mark_published(batch)
        except _DB_ERRORS:
            # Left pending: the relay republishes them and consumers absorb the duplicates.
            log.warning("inbox_mark_failed", count=len(batch))

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()


@dataclass
class Dispatcher:
    publisher: Publisher
    gate: BrokerGate
    marker: PublishedMarker
    max_backlog: int = 50_000
    batch_size: int = 256
    publish_timeout_s: float = 5.0
    _queue: asyncio.Queue[ChangeEvent] = field(default_factory=asyncio.Queue, init=False)
    _busy: bool = field(default=False, init=False)
    dropped: int = field(default=0, init=False)

    def submit(self, events: list[ChangeEvent]) -> None:
        for event in events:
            if self._queue.qsize() >= self.max_backlog:
                self.dropped += 1  # still pending in the inbox: the relay takes it
                continue
            self._queue.put_nowait(event)

    def idle(self) -> bool:
        return self._queue.empty() and not self._busy

    async def drain(self, timeout_s: float) -> None:
        """On shutdown, give queued events a moment to publish (the relay has the rest)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy = True
            try:
                if self.gate.available():
                    confirmed = await asyncio.gather(*(self._one(e) for e in batch))
                    self.marker.add(
                        [e.event_id for e, ok in zip(batch, confirmed, strict=True) if ok]
                    )
            finally:
                self._busy = False
                for _ in batch:
                    self._queue.task_done()

    async def _one(self, event: ChangeEvent) -> bool:
        try:
            await asyncio.wait_for(self.publisher.publish(event), self.publish_timeout_s)
        except Exception:  # stays pending for the relay
            return False
        return True

    async def publish_now(self, events: list[ChangeEvent]) -> list[str]:
        """Publish and wait for confirms (used when PostgreSQL is down and the broker must hold
        the events before we answer)."""
        if not self.gate.available():
            return []
        results = await asyncio.gather(*(self._one(e) for e in events))
        return [e.event_id for e, ok in zip(events, results, strict=True) if ok]


async def cancel_quietly(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
