"""How far a connection's initial import has got: stage, done of total, rate, time left.

The import (``shared.ingest.importer``) keeps its own marks in ``cursors``: ``import:started_at``,
``import:stage`` while it queues, and once everything is queued ``import:queued_at``,
``import:total`` (records queued for the engine plus those it wrote itself in batches) and
``import:batched``. Done is what it wrote itself plus every queued event the engine has finished
with (an outcome, or a dead letter: a person's now, not the import's). The rate is done per minute
since the start; the time left is what remains at that rate.

Only the import's own events count: the reconciler's polls run meanwhile with the same origin and
land in the same window, so the import's are told apart by their lane (it queues every event in
the bulk lane, whose routing keys start ``bulk.``; the reconciler's travel the live lane). Counting
the polls too made the import look further along and faster than it was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.infra.db import DbConnection
from shared.ingest.importer import BATCHED, QUEUED, STAGE, STARTED, TOTAL

_FINISHED = """
SELECT count(*) FROM inbox i
WHERE i.connection_id = $1 AND i.origin = 'reconciler' AND i.routing_key LIKE 'bulk.%'
  AND i.received_at >= $2 AND i.received_at <= $3
  AND (EXISTS (SELECT 1 FROM sync_outcomes o WHERE o.event_id = i.event_id)
       OR EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = i.event_id))
"""


async def import_progress(
    conn: DbConnection, connection_id: UUID, now: datetime | None = None
) -> dict[str, Any] | None:
    """None until an import started for the connection."""
    rows = await conn.fetch(
        "SELECT name, value FROM cursors WHERE connection_id = $1 AND name = ANY($2::text[])",
        connection_id,
        [STARTED, STAGE, QUEUED, TOTAL, BATCHED],
    )
    marks = {str(r["name"]): str(r["value"]) for r in rows}
    if STARTED not in marks:
        return None
    started = datetime.fromisoformat(marks[STARTED])
    moment = now or datetime.now(UTC)
    elapsed = max((moment - started).total_seconds(), 1e-3)
    if QUEUED not in marks:
        return {"stage": marks.get(STAGE, "starting"), "done": 0, "total": None}
    queued_at = datetime.fromisoformat(marks[QUEUED])
    total, batched = int(marks.get(TOTAL, "0")), int(marks.get(BATCHED, "0"))
    finished = int(await conn.fetchval(_FINISHED, connection_id, started, queued_at) or 0)
    done = min(batched + finished, total)
    rate = done / elapsed * 60.0
    remaining = total - done
    return {
        "stage": "done" if remaining == 0 else "applying",
        "done": done,
        "total": total,
        "rate_per_min": round(rate, 1),
        "eta_s": round(remaining / rate * 60.0, 1) if rate > 0 and remaining else 0.0,
    }
