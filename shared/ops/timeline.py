"""Per-minute figures of the last hour for the console's charts, from the tables themselves:
events applied and failed (``sync_outcomes``) and propagation latency (``inbox`` receipt to the
outcome row)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.infra.db import DbConnection

_PER_MINUTE = """
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - make_interval(mins => $2 - 1),
                           date_trunc('minute', now()), interval '1 minute') AS minute
)
SELECT m.minute,
    count(o.id) FILTER (WHERE o.outcome <> 'error') AS applied,
    count(o.id) FILTER (WHERE o.outcome = 'error') AS failed
FROM minutes m
LEFT JOIN sync_outcomes o ON date_trunc('minute', o.created_at) = m.minute
    AND ($1::uuid IS NULL OR o.connection_id = $1)
    AND o.created_at >= date_trunc('minute', now()) - make_interval(mins => $2 - 1)
GROUP BY m.minute ORDER BY m.minute
"""

_LATENCY = """
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - make_interval(mins => $2 - 1),
                           date_trunc('minute', now()), interval '1 minute') AS minute
), seen AS (
    SELECT date_trunc('minute', o.created_at) AS minute,
        extract(epoch FROM o.created_at - i.received_at) AS seconds
    FROM sync_outcomes o JOIN inbox i ON i.event_id = o.event_id
    WHERE o.outcome = 'applied' AND ($1::uuid IS NULL OR o.connection_id = $1)
      AND o.created_at >= date_trunc('minute', now()) - make_interval(mins => $2 - 1)
)
SELECT m.minute,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY s.seconds) AS p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY s.seconds) AS p95
FROM minutes m LEFT JOIN seen s ON s.minute = m.minute
GROUP BY m.minute ORDER BY m.minute
"""


async def events_per_minute(
    conn: DbConnection, connection_id: UUID | None = None, minutes: int = 60
) -> list[dict[str, Any]]:
    rows = await conn.fetch(_PER_MINUTE, connection_id, minutes)
    return [
        {"minute": r["minute"], "applied": int(r["applied"]), "failed": int(r["failed"])}
        for r in rows
    ]


async def latency_per_minute(
    conn: DbConnection, connection_id: UUID | None = None, minutes: int = 60
) -> list[dict[str, Any]]:
    rows = await conn.fetch(_LATENCY, connection_id, minutes)
    return [
        {"minute": r["minute"], "p50": float(r["p50"] or 0.0), "p95": float(r["p95"] or 0.0)}
        for r in rows
    ]
