"""The backstop: find changes no webhook told us about, and publish them like any other event.

Per connection, with durable cursors:
- QBO CDC for the synced types from the last high-water mark (minus an overlap; never further
  back than CDC's 30 days); an entity that hits CDC's 1,000-object cap is re-read by query, paged;
- QBO polling for what webhooks never announce (TaxCode, TaxRate, Attachable);
- the Re-Leased change feed by sequence.
A change is published only when nothing already covers it: the link already holds that version
(we applied it, or wrote it ourselves), or the inbox holds a notification for the same record at
or after that time (the webhook arrived). Published repairs are counted and logged one by one
(``reconcile_repaired``): each one is a webhook that was lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from shared.adapters.postgres.cursors import CursorRepository
from shared.adapters.qbo.client import QboClient, qbo_timestamp
from shared.adapters.released.client import ReleasedClient
from shared.domain.connections import Connection
from shared.domain.entities import CDC_MAX_DAYS, CDC_MAX_OBJECTS, QBO_POLLED_TYPES, QBO_SYNCED_TYPES
from shared.domain.events import ChangeEvent, Source, derive_event_id
from shared.domain.qbo_notifications import parse_time
from shared.domain.released_notifications import event_from_item
from shared.infra import metrics
from shared.infra.logging import get_logger
from shared.ingest.dispatch import Publisher
from shared.ingest.relay import publish_new

log = get_logger(__name__)

QBO_CURSOR, RELEASED_CURSOR = "qbo_cdc", "released_feed"

_UNCOVERED = """
SELECT c.idx FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[])
    WITH ORDINALITY AS c(entity, entity_id, at, version, idx)
WHERE NOT EXISTS (
    SELECT 1 FROM links l
    WHERE l.connection_id = $1
      AND ((l.qbo_id = c.entity_id AND lower(l.qbo_type) = c.entity AND l.qbo_version = c.version)
        OR (l.released_id = c.entity_id AND l.released_version = c.version)))
AND NOT EXISTS (
    SELECT 1 FROM inbox i
    WHERE i.source = $2 AND i.connection_id = $1 AND i.entity = c.entity
      AND i.entity_id = c.entity_id
      AND (i.event->>'occurred_at')::timestamptz >= c.at - interval '1 second')
"""


@dataclass
class ReconcileReport:
    connection_id: UUID
    examined: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def total_repaired(self) -> int:
        return sum(self.repaired.values())


def qbo_change(realm: str, entity: str, row: dict[str, Any], now: datetime) -> ChangeEvent:
    """A change event for one object CDC or a query returned."""
    meta = row.get("MetaData") or {}
    last = str(meta.get("LastUpdatedTime") or "")
    deleted = str(row.get("status", "")).lower() == "deleted"
    version = "deleted" if deleted else str(row.get("SyncToken", last))
    if deleted:
        operation = "delete"
    elif last and meta.get("CreateTime") == last:
        operation = "create"
    else:
        operation = "update"
    entity_id = str(row["Id"])
    return ChangeEvent(
        event_id=derive_event_id("qbo", realm, entity, entity_id, "reconcile", version),
        source="qbo",
        account_id=realm,
        entity=entity.lower(),
        entity_id=entity_id,
        operation=operation,
        occurred_at=parse_time(last, now),
        received_at=now,
        origin="reconciler",
        version=version,
    )


@dataclass
class Reconciler:
    pool: asyncpg.Pool
    publisher: Publisher
    overlap: timedelta = timedelta(minutes=2)
    feed_page: int = 1000

    async def reconcile(
        self,
        connection: Connection,
        qbo: QboClient,
        released: ReleasedClient,
        *,
        sweep: bool = False,
    ) -> ReconcileReport:
        started = time.perf_counter()
        report = ReconcileReport(connection.id)
        await self._qbo_cdc(connection, qbo, report, sweep=sweep)
        await self._qbo_polled(connection, qbo, report)
        await self._released_feed(connection, released, report)
        log.info(
            "reconcile_pass",
            connection_id=str(connection.id),
            sweep=sweep,
            examined=report.examined,
            repaired=report.repaired,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return report

    async def _qbo_cdc(
        self, connection: Connection, qbo: QboClient, report: ReconcileReport, *, sweep: bool
    ) -> None:
        realm = str(connection.qbo_realm_id)
        cursors = CursorRepository(self.pool)
        now = datetime.now(UTC)
        floor = now - timedelta(days=CDC_MAX_DAYS) + timedelta(minutes=5)
        # Nothing from before the connection existed is a lost webhook: the import covers it.
        if connection.created_at is not None:
            floor = max(floor, connection.created_at)
        mark = await cursors.get(connection.id, QBO_CURSOR)
        since = (
            floor if sweep or mark is None else max(parse_time(mark, floor) - self.overlap, floor)
        )
        changed = await qbo.cdc(list(QBO_SYNCED_TYPES), since)
        events: list[ChangeEvent] = []
        for entity, rows in changed.items():
            if len(rows) >= CDC_MAX_OBJECTS:
                # Capped: read the rest by query, paged (deleted objects only come from CDC).
                stamp = qbo_timestamp(since)
                live = await qbo.query_all(entity, f"MetaData.LastUpdatedTime >= '{stamp}'")
                rows = [r for r in rows if str(r.get("status", "")).lower() == "deleted"] + live
            events += [qbo_change(realm, entity, row, now) for row in rows]
        report.examined["qbo_cdc"] = len(events)
        report.repaired["qbo_cdc"] = await self._publish_uncovered(connection, "qbo", events)
        await cursors.set(connection.id, QBO_CURSOR, now.isoformat())

    async def _qbo_polled(
        self, connection: Connection, qbo: QboClient, report: ReconcileReport
    ) -> None:
        realm = str(connection.qbo_realm_id)
        now = datetime.now(UTC)
        events: list[ChangeEvent] = []
        for entity in QBO_POLLED_TYPES:
            rows = await qbo.query_all(entity)
            events += [qbo_change(realm, entity, row, now) for row in rows]
            if entity == "Attachable":
                live = {str(row["Id"]) for row in rows}
                events += await self._vanished(connection, entity, live, now)
        report.examined["qbo_polled"] = len(events)
        # Never announced by webhook, so a publish here is the normal path, not a repair.
        await self._publish_uncovered(connection, "qbo", events, repair=False)

    async def _vanished(
        self, connection: Connection, qbo_type: str, live: set[str], now: datetime
    ) -> list[ChangeEvent]:
        """Linked records that polling no longer finds were deleted (QBO announces no
        Attachable change, deletions included)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT qbo_id FROM links WHERE connection_id = $1 AND qbo_type = $2 "
                "AND status = 'linked' AND qbo_id IS NOT NULL",
                connection.id,
                qbo_type,
            )
        gone = [str(r["qbo_id"]) for r in rows if str(r["qbo_id"]) not in live]
        realm = str(connection.qbo_realm_id)
        return [
            qbo_change(realm, qbo_type, {"Id": obj_id, "status": "Deleted"}, now) for obj_id in gone
        ]

    async def _released_feed(
        self, connection: Connection, released: ReleasedClient, report: ReconcileReport
    ) -> None:
        cursors = CursorRepository(self.pool)
        after = int(await cursors.get(connection.id, RELEASED_CURSOR) or 0)
        examined = repaired = 0
        now = datetime.now(UTC)
        while True:
            items = await released.events(after, self.feed_page)
            events = []
            for item in items:
                parsed = event_from_item(item, now)
                if isinstance(parsed, ChangeEvent):
                    events.append(parsed.model_copy(update={"origin": "reconciler"}))
            examined += len(items)
            repaired += await self._publish_new(connection, events)
            if items:
                after = max(int(i.get("sequence", after)) for i in items)
                await cursors.set(connection.id, RELEASED_CURSOR, str(after))
            if len(items) < self.feed_page:
                break
        report.examined["released_feed"] = examined
        report.repaired["released_feed"] = repaired

    async def _publish_uncovered(
        self,
        connection: Connection,
        source: Source,
        events: list[ChangeEvent],
        *,
        repair: bool = True,
    ) -> int:
        if not events:
            return 0
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                _UNCOVERED,
                connection.id,
                source,
                [e.entity for e in events],
                [e.entity_id for e in events],
                [e.occurred_at for e in events],
                [e.version for e in events],
            )
        uncovered = [events[int(r["idx"]) - 1] for r in rows]
        return await self._publish_new(connection, uncovered, repair=repair)

    async def _publish_new(
        self, connection: Connection, events: list[ChangeEvent], *, repair: bool = True
    ) -> int:
        """Publish what the inbox has not seen; each one is a repair unless polled by design."""
        fresh = await publish_new(self.pool, self.publisher, connection.id, events)
        for event in fresh if repair else []:
            metrics.RECONCILE_REPAIRS.labels(event.source, event.entity).inc()
            log.warning(
                "reconcile_repaired",
                connection_id=str(connection.id),
                source=event.source,
                entity=event.entity,
                entity_id=event.entity_id,
                operation=event.operation,
                version=event.version,
            )
        return len(fresh)
