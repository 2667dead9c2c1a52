"""Catch-up progress of a connection: the changes the initial import and the reconciler queued
in the last day, how many the engine has handled, and when the rest should be done at the pace
of the last five minutes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.infra.db import DbConnection

RATE_WINDOW_S = 300.0

_BACKLOG = """
SELECT count(*) AS total,
    count(*) FILTER (WHERE h.at IS NOT NULL) AS handled,
    count(*) FILTER (WHERE h.at > now() - make_interval(secs => $2)) AS recent
FROM inbox i
LEFT JOIN LATERAL (
    SELECT least(
        (SELECT min(o.created_at) FROM sync_outcomes o WHERE o.event_id = i.event_id),
        (SELECT min(d.created_at) FROM dead_letters d WHERE d.event_id = i.event_id),
        (SELECT min(p.parked_at) FROM parked_events p WHERE p.event_id = i.event_id)) AS at
) h ON true
WHERE i.connection_id = $1 AND i.origin = 'reconciler' AND i.received_at > now() - interval '1 day'
"""


async def backlog(conn: DbConnection, connection_id: UUID) -> dict[str, Any]:
    """``total``, ``handled``, ``remaining`` and ``eta_s`` (None: nothing left or no pace yet)."""
    row = await conn.fetchrow(_BACKLOG, connection_id, RATE_WINDOW_S)
    found = dict(row) if row is not None else {}
    total, handled, recent = (int(found.get(k) or 0) for k in ("total", "handled", "recent"))
    remaining = total - handled
    eta = remaining / (recent / RATE_WINDOW_S) if remaining and recent else None
    return {"total": total, "handled": handled, "remaining": remaining, "eta_s": eta}
