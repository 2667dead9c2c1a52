"""Import progress counts the import's own work only: the reconciler's polls finished in the same
window (same origin, live lane) must not make the import look further along or faster."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from shared.adapters.postgres.inbox import PENDING, InboxEntry, InboxRepository
from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection
from shared.ingest.importer import BATCHED, QUEUED, STARTED, TOTAL
from shared.ops.import_progress import import_progress

pytestmark = pytest.mark.integration


def _event(connection_id: UUID, n: int, *, bulk: bool, at: datetime) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"progress-{uuid.uuid4().hex}",
        source="qbo",
        connection_id=connection_id,
        account_id="realm-progress",
        entity="invoice",
        entity_id=str(n),
        operation="import" if bulk else "update",
        occurred_at=at,
        received_at=at,
        origin="reconciler",
        lane="bulk" if bulk else "live",
    )


async def _finished(conn: DbConnection, events: list[ChangeEvent]) -> None:
    """In the inbox with an outcome each, as the engine leaves them."""
    await InboxRepository(conn).store([InboxEntry(e, PENDING) for e in events])
    await conn.executemany(
        "UPDATE inbox SET received_at = $2, status = 'published' WHERE event_id = $1",
        [(e.event_id, e.received_at) for e in events],
    )
    await conn.executemany(
        "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
        "outcome) VALUES ($1, $2, 'qbo_to_released', 'invoice', $3, 'applied')",
        [(e.connection_id, e.event_id, e.entity_id) for e in events],
    )


async def test_progress_rate_and_eta_count_only_the_imports_events(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    started, queued = now - timedelta(minutes=10), now - timedelta(minutes=1)
    async with pool.acquire() as conn:
        cid: UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id, status) VALUES ($1, 'active') "
            "RETURNING id",
            f"progress-{uuid.uuid4().hex[:8]}",
        )
        await conn.executemany(
            "INSERT INTO cursors (connection_id, name, value) VALUES ($1, $2, $3)",
            [
                (cid, STARTED, started.isoformat()),
                (cid, QUEUED, queued.isoformat()),
                (cid, TOTAL, "100"),
                (cid, BATCHED, "10"),
            ],
        )
        during = started + timedelta(minutes=2)
        await _finished(conn, [_event(cid, n, bulk=True, at=during) for n in range(20)])
        # The reconciler polled meanwhile: live-lane events of the same origin, all finished.
        await _finished(conn, [_event(cid, 100 + n, bulk=False, at=during) for n in range(30)])
        progress = await import_progress(conn, cid, now=now)
    assert progress is not None
    # 10 written in batches + 20 queued and finished, over 10 minutes: 3 a minute, 70 left.
    assert (progress["done"], progress["total"], progress["stage"]) == (30, 100, "applying")
    assert progress["rate_per_min"] == pytest.approx(3.0)
    assert progress["eta_s"] == pytest.approx(70 / 3.0 * 60.0, rel=1e-3)
