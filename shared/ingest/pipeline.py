"""From verified notifications to durable change events (guarantees 1 and 2).

For one delivery:
1. resolve each account to its connection (cached; an account with no connection is recorded as
   ignored and not published);
2. insert into the inbox (group-committed with concurrent deliveries); ``ON CONFLICT DO NOTHING``
   on ``event_id`` is the dedupe, and the commit is what makes the events durable;
3. hand the new events to the dispatcher, which publishes them with confirms right behind the
   response (the relay covers whatever it cannot), and answer 200;
4. PostgreSQL down: the broker alone must confirm every event before we answer 200; if it cannot
   either, answer 503 so the sender retries. PostgreSQL up but stuck (a statement or lock
   timeout fired): answer 503 at once, the sender retries and dedupe absorbs the repeat.

An event the inbox refuses on its own (see ``group_commit``) is counted as rejected and logged;
it never changes the answer for the other events of the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from shared.adapters.postgres.connections import ConnectionDirectory
from shared.adapters.postgres.inbox import IGNORED, PENDING, InboxEntry
from shared.domain.events import ChangeEvent, Source
from shared.infra.logging import get_logger
from shared.ingest.dispatch import Dispatcher
from shared.ingest.group_commit import UNAVAILABLE, InboxWriter

log = get_logger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
# The database answers but too slowly: the broker-only path would lose dedupe for nothing.
_STUCK = (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError)


@dataclass
class IngestResult:
    status: int
    new: int = 0
    duplicate: int = 0
    ignored: int = 0
    published: int = 0
    queued: int = 0
    rejected: int = 0
    stored: bool = True


@dataclass
class Ingestor:
    source: Source
    directory: ConnectionDirectory
    writer: InboxWriter
    dispatcher: Dispatcher

    async def pace(self) -> None:
        """Wait, briefly, while publishing lags a sustained stream (see ``Dispatcher.pace``)."""
        await self.dispatcher.pace()

    async def ingest(self, events: list[ChangeEvent]) -> IngestResult:
        if not events:
            return IngestResult(200)
        entries = await self._entries(events)
        try:
            stored = await self.writer.store(entries)
        except _STUCK as exc:
            log.warning("inbox_unavailable", error=f"{type(exc).__name__}: {exc}"[:200])
            return IngestResult(503, stored=False)
        except UNAVAILABLE as exc:
            log.warning("inbox_unavailable", error=f"{type(exc).__name__}: {exc}"[:200])
            return await self._broker_only(entries)
        fresh = [e for e in entries if e.event.event_id in stored.new]
        to_publish = [e.event for e in fresh if e.status == PENDING]
        self.dispatcher.submit(to_publish)
        return IngestResult(
            200,
            new=len(fresh),
            duplicate=len(entries) - len(fresh) - len(stored.rejected),
            ignored=len(fresh) - len(to_publish),
            queued=len(to_publish),
            rejected=len(stored.rejected),
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
                entries.append(InboxEntry(event.owned_by(owner), PENDING))
        return entries

    async def _broker_only(self, entries: list[InboxEntry]) -> IngestResult:
        """PostgreSQL is down: answer 200 only once the broker confirmed every event."""
        events = [e.event for e in entries if e.status == PENDING]
        published = await self.dispatcher.publish_now(events)
        if len(published) < len(events):
            return IngestResult(503, new=len(events), stored=False)
        return IngestResult(
            200,
            new=len(entries),
            ignored=len(entries) - len(events),
            published=len(published),
            stored=False,
        )
