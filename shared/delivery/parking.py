"""Parked events: work held for a connection that cannot run now, released in order on resume.

A paused connection, or one whose grant died, is not a failure of the event: retrying would only
burn attempts and end in the dead-letter queue for a reason that has nothing to do with the
record. So the consumer parks such an event (acking the message once the row is committed) and
``release`` republishes the connection's parked events, oldest first, when it resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.adapters.broker import EVENTS_EXCHANGE, EventPublisher
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection, plain_row
from shared.infra.logging import get_logger

log = get_logger("ops.parking")

NEEDS_REAUTH = "needs re-authorisation"
_ACCOUNT_COLUMN = {"qbo": "qbo_realm_id", "released": "released_company_id"}
_RELEASE_BATCH = 100


@dataclass(frozen=True)
class Parked:
    """Where a parked event went: its connection, and that connection's status and last change."""

    connection_id: UUID
    status: str
    updated_at: datetime


async def _owner(conn: DbConnection, event: ChangeEvent) -> asyncpg.Record | None:
    if event.connection_id is not None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT id, status, updated_at FROM connections WHERE id = $1", event.connection_id
        )
        return row
    column = _ACCOUNT_COLUMN[event.source]
    found: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT id, status, updated_at FROM connections WHERE {column} = $1",  # noqa: S608
        event.account_id,
    )
    return found


async def park(
    conn: DbConnection, event: ChangeEvent, *, queue: str, routing_key: str, reason: str
) -> Parked | None:
    """Store the event for its connection; ``None`` when no connection owns it."""
    owner = await _owner(conn, event)
    if owner is None:
        return None
    await conn.execute(
        "INSERT INTO parked_events (connection_id, event_id, queue, routing_key, event, reason) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, queue) DO NOTHING",
        owner["id"],
        event.event_id,
        queue,
        routing_key or event.routing_key,
        json.loads(event.to_bytes()),
        reason[:2000],
    )
    return Parked(owner["id"], owner["status"], owner["updated_at"])


async def pause_for_reauthorisation(
    conn: DbConnection, connection_id: UUID, error: str, *, unchanged_since: datetime
) -> bool:
    """Mark an active connection paused because its grant is dead; True when this did it.

    Only if the row did not change since the event was taken: a connection resumed (or
    reconnected) while the event was failing is not paused again on stale evidence.
    """
    changed: str = await conn.execute(
        "UPDATE connections SET status = 'paused', status_reason = $2 "
        "WHERE id = $1 AND status = 'active' AND updated_at < $3",
        connection_id,
        f"{NEEDS_REAUTH}: {error[:300]}",
        unchanged_since,
    )
    return changed.endswith(" 1")


async def count(conn: DbConnection, connection_id: UUID) -> int:
    found: int = await conn.fetchval(
        "SELECT count(*) FROM parked_events WHERE connection_id = $1", connection_id
    )
    return found


async def listing(
    conn: DbConnection, connection_id: UUID, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, event_id, queue, routing_key, reason, parked_at FROM parked_events "
        "WHERE connection_id = $1 ORDER BY id LIMIT $2",
        connection_id,
        limit,
    )
    return [plain_row(r) for r in rows]


async def release(pool: asyncpg.Pool, publisher: EventPublisher, connection_id: UUID) -> int:
    """Republish the connection's parked events in the order they were received; how many.

    Rows are locked (SKIP LOCKED) and deleted in the transaction that publishes them, so two
    concurrent resumes never publish one event twice; a crash between the broker's confirm and the
    commit publishes it again on the next resume, which the engine's idempotency absorbs.
    """
    released = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, routing_key, event FROM parked_events WHERE connection_id = $1 "
                "ORDER BY event ->> 'received_at', id LIMIT $2 FOR UPDATE SKIP LOCKED",
                connection_id,
                _RELEASE_BATCH,
            )
            for row in rows:
                event = ChangeEvent.model_validate(row["event"])
                await publisher.publish(event, exchange=EVENTS_EXCHANGE)
            if rows:
                await conn.execute(
                    "DELETE FROM parked_events WHERE id = ANY($1::bigint[])",
                    [r["id"] for r in rows],
                )
        released += len(rows)
        if len(rows) < _RELEASE_BATCH:
            break
    if released:
        log.info("parked_events_released", connection_id=str(connection_id), count=released)
    return released
