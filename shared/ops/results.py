"""Sync results: what became of each record, as a support person asks it.

A *record* is one record on one side of a connection, as the engine saw it in one direction:
(direction, entity, source id). Its result is its latest row in ``sync_outcomes`` (read from
``sync_results_latest``, which triggers keep in step with the history), joined with
its link (both ids, link status, the last-synced snapshot and so its number or name), its open
dead letter (error class, remedy, the letter to replay) and whether it is parked.

The engine writes an outcome for every event it finishes (and an ``error`` row, outside the
rolled-back transaction, for a permanent failure); nothing here writes to those tables except
``resync``, which publishes a fresh event for the record so the engine runs it again now, inside
the same API budgets as any other event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.adapters.broker import EventPublisher
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection, plain_row
from shared.infra.logging import get_logger
from shared.ops import results_sql

log = get_logger("ops.results")

DIRECTIONS = ("qbo_to_released", "released_to_qbo")
OUTCOMES = ("applied", "echo", "ignored", "reverted", "flagged", "error")
MAX_PAGE = 200


class InvalidFilter(ValueError):
    """A filter value outside what the results can be filtered by."""


@dataclass(frozen=True)
class ResultFilter:
    entity: str | None = None
    outcome: str | None = None
    error_class: str | None = None
    text: str | None = None  # either side's id, the number or the name (substring, any case)
    since: datetime | None = None
    until: datetime | None = None
    direction: str | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise InvalidFilter(f"outcome must be one of {', '.join(OUTCOMES)}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise InvalidFilter(f"direction must be one of {', '.join(DIRECTIONS)}")
        if self.text is not None and len(self.text.encode()) > 200:
            raise InvalidFilter("text is longer than 200 bytes")

    def pattern(self) -> str | None:
        if not self.text:
            return None
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"


def _item(row: Any) -> dict[str, Any]:
    item = plain_row(row)
    item.pop("total", None)
    item.pop("outcome_label", None)
    item["remedy"] = item.get("remedy") or item.pop("dead_letter_remedy", None)
    item.pop("dead_letter_remedy", None)
    item["source"] = "qbo" if item["direction"] == "qbo_to_released" else "released"
    return item


async def list_results(
    conn: DbConnection,
    connection_id: UUID,
    where: ResultFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    source_id: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(records matching, one page of them, newest result first)."""
    async with conn.transaction():
        # The filters are "$n IS NULL OR ...": a generic plan cannot drop the unused ones and
        # sorts every outcome; a plan made for the values given uses the indexes.
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        args = (
            connection_id,
            where.entity,
            where.outcome,
            where.error_class,
            where.pattern(),
            where.since,
            where.until,
            where.direction,
            source_id,
            max(1, min(limit, MAX_PAGE)),
            max(0, offset),
        )
        if where.error_class is None and where.pattern() is None:
            rows = await conn.fetch(results_sql.PAGE, *args)
            total = int(await conn.fetchval(results_sql.COUNT, *args[:9]) or 0)
            return total, [_item(r) for r in rows]
        rows = await conn.fetch(results_sql.SEARCH, *args)
    total = int(rows[0]["total"]) if rows else 0
    return total, [_item(r) for r in rows]


async def record_detail(
    conn: DbConnection, connection_id: UUID, direction: str, entity: str, source_id: str
) -> dict[str, Any] | None:
    """One record: its result, both ids, the snapshot, its history of outcomes (newest first)."""
    _, found = await list_results(
        conn, connection_id, ResultFilter(direction=direction, entity=entity), source_id=source_id
    )
    if not found:
        return None
    record = found[0]
    # Both directions of the pair: QBO ids are unique per type only, Re-Leased ids everywhere.
    from_qbo = record["direction"] == "qbo_to_released"
    qbo_id = record.get("qbo_id") or (record["source_id"] if from_qbo else None)
    qbo_entity = str(record.get("qbo_type") or record["entity"]).lower()
    released_id = record.get("released_id") or (None if from_qbo else record["source_id"])
    history = await conn.fetch(
        "SELECT id, event_id, direction, entity, source_id, target_id, outcome, reason, remedy, "
        "created_at FROM sync_outcomes WHERE connection_id = $1 AND ("
        "(direction = 'qbo_to_released' AND source_id = $2 AND entity = $3) "
        "OR (direction = 'released_to_qbo' AND source_id = $4)) "
        "ORDER BY created_at DESC, id DESC LIMIT 50",
        connection_id,
        qbo_id,
        qbo_entity,
        released_id,
    )
    snapshot = None
    if (link_id := record.get("link_id")) is not None:
        snapshot = await conn.fetchval("SELECT snapshot FROM links WHERE id = $1", link_id)
    return {**record, "history": [plain_row(h) for h in history], "snapshot": snapshot}


def resync_event(connection: dict[str, Any], record: dict[str, Any]) -> ChangeEvent:
    """A fresh event for the record's source side, as if it had just changed."""
    source = record["source"]
    account = connection["qbo_realm_id"] if source == "qbo" else connection["released_company_id"]
    if not account:
        raise InvalidFilter("the connection is not bound to a QuickBooks company yet")
    now = datetime.now(UTC)
    return ChangeEvent(
        event_id=f"resync-{uuid.uuid4().hex}",
        source=source,
        connection_id=connection["id"],
        account_id=str(account),
        entity=record["entity"],
        entity_id=record["source_id"],
        operation="update",
        occurred_at=now,
        received_at=now,
        origin="replay",
    )


async def resync(
    conn: DbConnection,
    publisher: EventPublisher,
    connection_id: UUID,
    direction: str,
    entity: str,
    source_id: str,
) -> str | None:
    """Publish a fresh event for one record; its event id (None: no such record)."""
    found = await record_detail(conn, connection_id, direction, entity, source_id)
    row = await conn.fetchrow(
        "SELECT id, qbo_realm_id, released_company_id FROM connections WHERE id = $1",
        connection_id,
    )
    if found is None or row is None:
        return None
    event = resync_event(dict(row), found)
    await publisher.publish(event)
    log.info(
        "record_resync_requested",
        connection_id=str(connection_id),
        direction=direction,
        entity=entity,
        entity_id=source_id,
        event_id=event.event_id,
    )
    return event.event_id
