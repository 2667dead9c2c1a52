"""From verified notifications to durable, published change events.

Order of work for one delivery (guarantee 1, "no accepted webhook is lost"):
1. resolve each account to its connection (cached; an unknown account is recorded as ignored);
2. insert into the inbox in one statement; ``ON CONFLICT DO NOTHING`` is the dedupe;
3. publish the new events with confirms, concurrently, within a short deadline;
4. answer: 200 when every new event is durable in the inbox or confirmed by the broker; 503 when
   neither PostgreSQL nor RabbitMQ took an event, so the sender retries.
Rows whose publish did not confirm stay ``pending``; the relay publishes them later. Marking rows
published happens in batches off the request path (``PublishedMarker``): if that is lost, the relay
publishes again and consumers absorb the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

import asyncpg

from shared.adapters.connections import ConnectionDirectory
from shared.adapters.inbox import IGNORED, PENDING, InboxEntry, InboxRepository
from shared.domain.events import ChangeEvent, Source
from shared.infra.logging import get_logger

log = get_logger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Publisher(Protocol):
    async def publish(self, event: ChangeEvent) -> None: ...


class BrokerGate(Protocol):
    """Tells whether publishing is worth trying right now (the broker link is up)."""

    def available(self) -> bool: ...


@dataclass
class IngestResult:
    status: int
    new: int = 0
    duplicate: int = 0
    ignored: int = 0
    published: int = 0
    pending: int = 0
    stored: bool = True


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
class Ingestor:
    source: Source
    pool: asyncpg.Pool
    directory: ConnectionDirectory
    publisher: Publisher
    gate: BrokerGate
    marker: PublishedMarker
    publish_timeout_s: float = 2.0
    _known_down: bool = field(default=False, init=False)

    async def ingest(self, events: list[ChangeEvent]) -> IngestResult:
        if not events:
            return IngestResult(200)
        entries = await self._entries(events)
        try:
            async with self.pool.acquire() as conn:
                new_ids = await InboxRepository(conn).store(entries)
        except _DB_ERRORS as exc:
            log.warning("inbox_unavailable", error=str(exc)[:200])
            return await self._publish_only(entries)
        fresh = [e for e in entries if e.event.event_id in new_ids]
        to_publish = [e.event for e in fresh if e.status == PENDING]
        published = await self._publish(to_publish)
        self.marker.add(published)
        return IngestResult(
            200,
            new=len(fresh),
            duplicate=len(entries) - len(fresh),
            ignored=len(fresh) - len(to_publish),
            published=len(published),
            pending=len(to_publish) - len(published),
        )

    async def _entries(self, events: list[ChangeEvent]) -> list[InboxEntry]:
        accounts = sorted({e.account_id for e in events})
        try:
            owners: dict[str, UUID | None] = await self.directory.resolve(self.source, accounts)
        except _DB_ERRORS:
            # Unknown without the database: publish anyway, the consumer resolves it.
            return [InboxEntry(e, PENDING) for e in events]
        entries: list[InboxEntry] = []
        for event in events:
            owner = owners.get(event.account_id)
            if owner is None:
                entries.append(InboxEntry(event, IGNORED, "no_connection"))
            else:
                entries.append(
                    InboxEntry(event.model_copy(update={"connection_id": owner}), PENDING)
                )
        return entries

    async def _publish(self, events: list[ChangeEvent]) -> list[str]:
        """Publish concurrently; returns the ids the broker confirmed in time."""
        if not events or not self.gate.available():
            return []

        async def one(event: ChangeEvent) -> str | None:
            try:
                await asyncio.wait_for(self.publisher.publish(event), self.publish_timeout_s)
            except Exception:  # any publish failure leaves the row pending for the relay
                return None
            return event.event_id

        results = await asyncio.gather(*(one(e) for e in events))
        return [r for r in results if r is not None]

    async def _publish_only(self, entries: list[InboxEntry]) -> IngestResult:
        """PostgreSQL is down: the broker alone must take every event, or the sender retries."""
        events = [e.event for e in entries if e.status == PENDING]
        published = await self._publish(events)
        if len(published) < len(events):
            return IngestResult(503, new=len(events), pending=len(events), stored=False)
        return IngestResult(
            200,
            new=len(entries),
            ignored=len(entries) - len(events),
            published=len(published),
            stored=False,
        )
