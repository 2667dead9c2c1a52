"""What an operator asks first: per connection, is it keeping up and what needs a person?

Lag is the age of the oldest webhook-delivered event of the last day that has neither an outcome,
nor a dead letter, nor a parked row: how far behind the engine is for that connection right now
(0 when caught up). Queue depths come from the broker and are shared by all connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiormq
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import AMQPError

from shared.adapters.broker import DEAD_QUEUE, RETRY_TIERS, WORK_QUEUES, retry_exchange
from shared.infra.db import DbConnection, plain_row
from shared.ops.import_progress import import_progress

_PER_CONNECTION = """
SELECT c.id, c.released_company_id, c.qbo_realm_id, c.status, c.status_reason,
    (SELECT extract(epoch FROM now() - min(i.received_at)) FROM inbox i
      WHERE i.connection_id = c.id AND i.received_at > now() - interval '1 day'
        AND NOT EXISTS (SELECT 1 FROM sync_outcomes o WHERE o.event_id = i.event_id)
        AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = i.event_id)
        AND NOT EXISTS (SELECT 1 FROM parked_events p WHERE p.event_id = i.event_id)
    ) AS lag_s,
    (SELECT count(*) FROM dead_letters d
      WHERE d.connection_id = c.id AND d.status = 'dead') AS dead_letters,
    (SELECT count(*) FROM parked_events p WHERE p.connection_id = c.id) AS parked,
    (SELECT count(*) FROM conflicts f
      WHERE f.connection_id = c.id AND f.resolved_at IS NULL) AS open_conflicts,
    (SELECT max(i.received_at) FROM inbox i
      WHERE i.connection_id = c.id AND i.origin = 'webhook') AS last_webhook_at,
    (SELECT max(u.updated_at) FROM cursors u WHERE u.connection_id = c.id) AS last_reconcile_at,
    (SELECT max(o.created_at) FROM sync_outcomes o
      WHERE o.connection_id = c.id) AS last_applied_at
FROM connections c
ORDER BY c.created_at, c.id
"""


async def connections_status(conn: DbConnection) -> list[dict[str, Any]]:
    rows = await conn.fetch(_PER_CONNECTION)
    out = []
    for row in rows:
        item = plain_row(row)
        item["lag_s"] = round(float(row["lag_s"] or 0.0), 1)
        item["import"] = await import_progress(conn, row["id"])
        out.append(item)
    return out


def queue_names(tiers: tuple[int, ...] = RETRY_TIERS) -> list[str]:
    return [*WORK_QUEUES, DEAD_QUEUE, *(retry_exchange(t) for t in tiers)]


async def queue_depths(
    broker: AbstractRobustConnection, names: list[str] | None = None
) -> dict[str, int | None]:
    """Messages ready per queue (None: the queue does not exist on this broker)."""
    depths: dict[str, int | None] = {}
    for name in names or queue_names():
        # A passive declare of a missing queue closes the channel: one channel per look.
        channel = await broker.channel()
        try:
            declared = await asyncio.wait_for(channel.declare_queue(name, passive=True), 5)
            depths[name] = int(declared.declaration_result.message_count or 0)
        except (AMQPError, aiormq.exceptions.AMQPError, TimeoutError):
            depths[name] = None
        finally:
            if not channel.is_closed:
                await channel.close()
    return depths
