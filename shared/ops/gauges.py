"""The gauges that describe state rather than count events: queue depths, connections by status
and their lag, dead letters, parked events, open conflicts, API budget use.

The processes that watch them (a consumer its queue; the admin service everything) call these on
an interval (``shared.bootstrap.health.sample_every``); Prometheus reads the last values.
"""

from __future__ import annotations

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.postgres.budgets import ApiBudget
from shared.delivery.parking import NEEDS_REAUTH
from shared.infra import metrics
from shared.ops.status import connections_status, queue_depths

STATUSES = ("active", "paused", "needs_reauth", "revoked", "pending")


async def sample_queues(broker: AbstractRobustConnection, names: list[str] | None = None) -> None:
    for name, depth in (await queue_depths(broker, names)).items():
        if depth is not None:
            metrics.QUEUE_DEPTH.labels(name).set(depth)


def _status_word(item: dict[str, object]) -> str:
    reason = str(item.get("status_reason") or "")
    if item.get("status") == "revoked" or reason.startswith(NEEDS_REAUTH):
        return "needs_reauth"
    return str(item.get("status") or "pending")


async def sample_state(pool: asyncpg.Pool, budgets: dict[str, ApiBudget]) -> None:
    """Connections, lag, dead letters, parked events, conflicts and budget use, from PostgreSQL."""
    async with pool.acquire() as conn:
        items = await connections_status(conn)
    counts = dict.fromkeys(STATUSES, 0)
    for item in items:
        word = _status_word(item)
        counts[word] = counts.get(word, 0) + 1
        metrics.CONNECTION_LAG.labels(str(item["id"])).set(float(item["lag_s"] or 0.0))
    for word, n in counts.items():
        metrics.CONNECTIONS.labels(word).set(n)
    metrics.DEAD_LETTERS.set(sum(int(i["dead_letters"] or 0) for i in items))
    metrics.PARKED.set(sum(int(i["parked"] or 0) for i in items))
    metrics.OPEN_CONFLICTS.set(sum(int(i["open_conflicts"] or 0) for i in items))
    for side, budget in budgets.items():
        used, blocked = await budget.usage(f"{side}:%")
        metrics.API_BUDGET_USED.labels(side).set(used)
        metrics.API_BUDGET_BLOCKED.labels(side).set(blocked)
